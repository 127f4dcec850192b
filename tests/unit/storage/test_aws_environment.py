"""The AWS environment of s3:// replicas: which setting wins, and the errors.

Pure resolution (an environment dict and files in tmp_path); the requests these
settings make are in tests/integration/test_s3_environment.py.
"""

import os

import pytest

from litetool.errors import ConfigError
from litetool.storage.aws_environment import resolve_s3_settings
from litetool.storage.location import parse_location

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
KEYS = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": SECRET}
NO_METADATA = {"AWS_EC2_METADATA_DISABLED": "true"}


def resolve(environ, url="s3://bucket/p", options=None, home="/nonexistent"):
    location = parse_location(url, options)
    env = {"AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_CONFIG_FILE": os.devnull, **environ}
    return resolve_s3_settings(location.options, location.secrets, env, home=home)


@pytest.fixture
def aws_files(tmp_path):
    """Write ~/.aws/credentials and ~/.aws/config below tmp_path; returns the env."""

    def write(credentials="", config=""):
        directory = tmp_path / ".aws"
        directory.mkdir(exist_ok=True)
        (directory / "credentials").write_text(credentials)
        (directory / "config").write_text(config)
        return {
            "AWS_SHARED_CREDENTIALS_FILE": str(directory / "credentials"),
            "AWS_CONFIG_FILE": str(directory / "config"),
        }

    return write


# -- endpoint and plain http ----------------------------------------------------------------


def test_endpoint_comes_from_the_option_then_the_s3_variable_then_the_generic_one(aws_files):
    env = {
        **KEYS,
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:3",
        "AWS_ENDPOINT": "http://127.0.0.1:4",
    }
    option = resolve(env, options={"endpoint": "http://127.0.0.1:1"})
    assert (option.endpoint, option.sources["endpoint"]) == (
        "http://127.0.0.1:1",
        "option endpoint",
    )
    # obstore lets AWS_ENDPOINT_URL_S3 beat "endpoint": both are passed.
    assert option.obstore_config()["aws_endpoint_url_s3"] == "http://127.0.0.1:1"
    assert resolve(env).endpoint == "http://127.0.0.1:2"
    del env["AWS_ENDPOINT_URL_S3"]
    assert resolve(env).endpoint == "http://127.0.0.1:3"
    del env["AWS_ENDPOINT_URL"]
    assert resolve(env).endpoint == "http://127.0.0.1:4"
    del env["AWS_ENDPOINT"]
    files = aws_files(config="[default]\nendpoint_url = http://127.0.0.1:5\n")
    from_profile = resolve({**env, **files})
    assert (from_profile.endpoint, from_profile.sources["endpoint"]) == (
        "http://127.0.0.1:5",
        "profile default",
    )
    assert resolve(env).endpoint is None  # AWS itself
    assert resolve(env).obstore_config() == {}


def test_an_http_endpoint_from_the_environment_allows_http_by_itself():
    assert resolve({**KEYS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}).allow_http
    assert resolve({**KEYS, "AWS_ENDPOINT_URL": "http://h:1", "AWS_ALLOW_HTTP": "true"}).allow_http
    assert not resolve(
        {**KEYS, "AWS_ENDPOINT_URL": "https://h", "AWS_ALLOW_HTTP": "true"}
    ).allow_http
    assert not resolve(KEYS).allow_http


@pytest.mark.parametrize(
    ("environ", "options", "match"),
    [
        (
            {"AWS_ENDPOINT_URL": "http://h:1", "AWS_ALLOW_HTTP": "false"},
            None,
            "AWS_ALLOW_HTTP is false",
        ),
        ({"AWS_ENDPOINT_URL": "http://h:1"}, {"allow_http": False}, "allow_http is false"),
        ({"AWS_ENDPOINT_URL": "https://h"}, {"allow_http": True}, "needs an http:// endpoint"),
        ({"AWS_ALLOW_HTTP": "maybe", "AWS_ENDPOINT_URL": "http://h"}, None, "true or false"),
        ({"AWS_ENDPOINT_URL": "127.0.0.1:9000"}, None, "AWS_ENDPOINT_URL must be an http"),
        ({"AWS_ENDPOINT_URL_S3": "ftp://h"}, None, "AWS_ENDPOINT_URL_S3 must be an http"),
    ],
)
def test_bad_endpoint_settings_are_config_errors(environ, options, match):
    with pytest.raises(ConfigError, match=match):
        resolve({**KEYS, **environ}, options={**(options or {})})


def test_an_endpoint_with_credentials_in_it_is_refused_without_echoing_them():
    with pytest.raises(ConfigError) as info:
        resolve({**KEYS, "AWS_ENDPOINT_URL": f"http://user:{SECRET}@h:1"})
    assert "without credentials" in info.value.message
    assert SECRET not in info.value.message


def test_an_explicit_http_endpoint_option_needs_no_aws_allow_http():
    settings = resolve(
        {**KEYS, "AWS_ALLOW_HTTP": "false"}, options={"endpoint": "http://127.0.0.1:1"}
    )
    assert settings.allow_http


# -- region -----------------------------------------------------------------------------------


def test_region_comes_from_the_option_then_aws_region_then_the_default_then_the_profile(
    aws_files,
):
    files = aws_files(config="[default]\nregion = eu-south-1\n")
    env = {**KEYS, **files, "AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}
    assert resolve(env, options={"region": "eu-north-1"}).region == "eu-north-1"
    assert resolve(env).region == "eu-west-2"
    del env["AWS_REGION"]
    settings = resolve(env)
    assert (settings.region, settings.sources["region"]) == ("eu-west-3", "AWS_DEFAULT_REGION")
    assert settings.obstore_config() == {"region": "eu-west-3"}
    del env["AWS_DEFAULT_REGION"]
    assert resolve(env).region == "eu-south-1"
    assert resolve(KEYS).region is None  # obstore's default, us-east-1


# -- credentials ------------------------------------------------------------------------------


def test_credentials_come_from_the_options_before_the_environment():
    settings = resolve(
        {**KEYS, "AWS_SESSION_TOKEN": "env-token"},
        options={"access_key_id": "AKIDOPT", "secret_access_key": "opt-secret"},
    )
    assert settings.sources["credentials"] == "options"
    assert settings.credentials.access_key_id == "AKIDOPT"
    # The environment's token belongs to the environment's keys, not to these.
    assert settings.credentials.session_token is None


def test_credentials_from_the_environment_carry_its_session_token():
    settings = resolve({**KEYS, "AWS_SESSION_TOKEN": "tok-1234"})
    assert settings.sources["credentials"] == "AWS_ACCESS_KEY_ID"
    assert (settings.credentials.access_key_id, settings.credentials.session_token) == (
        "AKIDENV",
        "tok-1234",
    )
    assert sorted(settings.secret_values()) == sorted([SECRET, "tok-1234"])
    assert SECRET not in repr(settings) and "tok-1234" not in repr(settings)
    assert SECRET not in str(settings.describe())


@pytest.mark.parametrize(
    ("environ", "options", "match"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKID"}, None, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": SECRET}, None, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS"),
        ({}, {"access_key_id": "AKID"}, "option secret_access_key is missing"),
    ],
)
def test_half_a_key_is_a_config_error(environ, options, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve({**NO_METADATA, **environ}, options=options)
    assert SECRET not in info.value.message


def test_the_default_profile_of_the_shared_credentials_file(aws_files, tmp_path):
    files = aws_files(
        credentials=f"[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = {SECRET}\n"
    )
    settings = resolve({**NO_METADATA, **files})
    assert settings.credentials.access_key_id == "AKIDFILE"
    assert (
        settings.sources["credentials"]
        == f"profile default ({files['AWS_SHARED_CREDENTIALS_FILE']})"
    )
    # Without the variables, the files are looked for in ~/.aws.
    settings = resolve_s3_settings({}, {}, NO_METADATA, home=str(tmp_path))
    assert settings.credentials.access_key_id == "AKIDFILE"


def test_a_named_profile_reads_both_files_and_the_credentials_file_wins(aws_files):
    files = aws_files(
        credentials=(
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = x\n"
            f"[minio]\naws_access_key_id = AKIDMINIO\naws_secret_access_key = {SECRET}\n"
        ),
        config=(
            "[profile minio]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9000\n"
            "aws_access_key_id = AKIDCONFIG\naws_secret_access_key = y\n"
        ),
    )
    settings = resolve({**NO_METADATA, **files, "AWS_PROFILE": "minio"})
    assert settings.credentials.access_key_id == "AKIDMINIO"
    assert settings.credentials.secret_access_key == SECRET
    assert (settings.region, settings.endpoint, settings.allow_http) == (
        "eu-central-1",
        "http://127.0.0.1:9000",
        True,
    )
    # Keys in the environment come before any profile (as for the AWS CLI).
    settings = resolve({**KEYS, **files, "AWS_PROFILE": "minio"})
    assert settings.credentials.access_key_id == "AKIDENV"
    assert settings.region == "eu-central-1"


def test_credentials_in_the_config_file_alone_and_a_session_token(aws_files):
    files = aws_files(
        config=(
            "[profile ci]\naws_access_key_id = AKIDCI\n"
            f"aws_secret_access_key = {SECRET}\naws_session_token = tok-5678\n"
        )
    )
    settings = resolve({**NO_METADATA, **files, "AWS_PROFILE": "ci"})
    assert settings.credentials.session_token == "tok-5678"
    assert settings.sources["credentials"] == f"profile ci ({files['AWS_CONFIG_FILE']})"


def test_a_profile_that_does_not_exist_is_named(aws_files):
    files = aws_files(credentials="[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    with pytest.raises(ConfigError, match="AWS profile 'prod' not found in"):
        resolve({**NO_METADATA, **files, "AWS_PROFILE": "prod"})


def test_a_profile_that_assumes_a_role_says_what_litetool_reads(aws_files):
    files = aws_files(
        config="[profile admin]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = d\n"
    )
    with pytest.raises(ConfigError) as info:
        resolve({**NO_METADATA, **files, "AWS_PROFILE": "admin"})
    assert "profile admin gets its credentials with role_arn" in info.value.message
    assert "aws configure export-credentials --profile admin" in info.value.hint


def test_a_malformed_credentials_file_is_named_without_its_contents(aws_files):
    files = aws_files(credentials=f"aws_secret_access_key = {SECRET}\n")
    with pytest.raises(ConfigError) as info:
        resolve({**NO_METADATA, **files})
    assert files["AWS_SHARED_CREDENTIALS_FILE"] in info.value.message
    assert SECRET not in info.value.message


@pytest.mark.parametrize(
    ("environ", "source"),
    [
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:r"}, "web identity"),
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/c"}, "container credentials"),
        ({"AWS_SKIP_SIGNATURE": "true"}, "unsigned requests"),
    ],
)
def test_sources_obstore_follows_itself_are_left_to_it(environ, source):
    settings = resolve({**NO_METADATA, **environ})
    assert settings.credentials is None
    assert source in settings.sources["credentials"]


def test_without_credentials_instance_metadata_is_the_last_source():
    settings = resolve({})
    assert settings.credentials is None
    assert settings.sources["credentials"] == "instance metadata"


def test_no_credentials_and_metadata_disabled_is_one_clear_error():
    with pytest.raises(ConfigError) as info:
        resolve({"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"})
    assert info.value.message.startswith(
        "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    )
    assert "AWS_EC2_METADATA_DISABLED" in info.value.hint


def test_the_suite_never_asks_instance_metadata():
    # tests/conftest.py: set for the whole session and inherited by subprocesses.
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["AWS_METADATA_ENDPOINT"].startswith("http://127.0.0.1:")
    assert os.environ["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert not [name for name in os.environ if name.startswith("AWS_") and "KEY" in name]
