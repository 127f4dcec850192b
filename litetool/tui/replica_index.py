"""Reading a replica's generations for the timeline, again and again, cheaply.

The timeline lists a replica's generations and opens the index of the one it
shows, and does both again whenever the engine publishes (it refreshes by
itself). A record object never changes once written (compaction writes new
keys, GC deletes keys), so ``CachedIndex`` keeps every record it has fetched
by key and every index it has built by the keys it was built from: a refresh
costs one listing plus the records written since, whatever the replica holds.
Fetching (and listing again when a record vanished since the listing) is the
replica's index reader's (``IndexReader.fetch_view``). No textual here.
"""

from __future__ import annotations

from litetool.errors import ObjectNotFound
from litetool.storage import GenerationIndex, GenerationInfo, IndexRecord, Replica
from litetool.storage.index import RecordKeys


class CachedIndex:
    """The generations of one replica, read through its index reader and kept
    (use from one event loop)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._records: dict[str, IndexRecord] = {}
        self._indexes: dict[str, tuple[tuple[str, ...], GenerationIndex]] = {}
        self.fetched_records = 0  # how many record objects were downloaded (for tests)

    async def list_generations(self) -> list[GenerationInfo]:
        """Every generation with records, oldest first (one listing)."""
        listing = await self.replica.index.list_record_keys()
        infos = [
            GenerationInfo.from_index(await self._index(generation, keys), len(keys))
            for generation, keys in sorted(listing.items())
        ]
        self._indexes = {g: built for g, built in self._indexes.items() if g in listing}
        # What the listing names, and what an index was built from (a record vanished
        # meanwhile means the index reader listed once more).
        live = {ref.key for keys in listing.values() for ref in keys.refs}
        live.update(key for keys, _ in self._indexes.values() for key in keys)
        self._records = {key: record for key, record in self._records.items() if key in live}
        return infos

    def latest_index(self, generation: str) -> GenerationIndex | None:
        """The index *generation* had at the last listing (None: not listed then)."""
        built = self._indexes.get(generation)
        return built[1] if built is not None else None

    async def load_generation(self, generation: str) -> GenerationIndex:
        """The validated index of *generation* as it is now (ObjectNotFound if it has
        no records)."""
        listing = await self.replica.index.list_record_keys(generation)
        if generation not in listing:
            raise ObjectNotFound(generation, hint=f"no generation {generation} here")
        return await self._index(generation, listing[generation])

    async def _index(self, generation: str, keys: RecordKeys) -> GenerationIndex:
        built = self._indexes.get(generation)
        if built is not None and built[0] == tuple(ref.key for ref in keys.view()):
            return built[1]
        records = await self.replica.index.fetch_view(generation, keys, self._records)
        self.fetched_records += sum(1 for key in records if key not in self._records)
        self._records.update(records)
        index = GenerationIndex.from_records(generation, list(records.values()))
        self._indexes[generation] = (tuple(records), index)
        return index
