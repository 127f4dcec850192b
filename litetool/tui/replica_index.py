"""Reading a replica's generations for the timeline, again and again, cheaply.

The timeline lists a replica's generations and opens the index of the one it
shows, and does both again whenever the engine publishes (it refreshes by
itself). A record object never changes once written (compaction writes new
keys, GC deletes keys), so ``IndexReader`` keeps every record it has fetched
by key and every index it has built by the keys it was built from: a refresh
costs one listing plus the records written since, whatever the replica holds.
No textual here.
"""

from __future__ import annotations

from litetool.errors import ObjectNotFound
from litetool.storage import GenerationIndex, GenerationInfo, IndexRecord, Replica
from litetool.storage.index import RecordKeys


class IndexReader:
    """The generations of one replica (use from one event loop)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._records: dict[str, IndexRecord] = {}
        self._indexes: dict[str, tuple[tuple[str, ...], GenerationIndex]] = {}
        self.fetched_records = 0  # how many record objects were downloaded (for tests)

    async def list_generations(self) -> list[GenerationInfo]:
        """Every generation with records, oldest first (one listing)."""
        listing = await self.replica.index.list_record_keys()
        infos = [
            GenerationInfo.from_index(await self._index(generation, listing), len(keys))
            for generation, keys in sorted(listing.items())
        ]
        live = {ref.key for keys in listing.values() for ref in keys.refs}
        self._records = {key: record for key, record in self._records.items() if key in live}
        self._indexes = {g: built for g, built in self._indexes.items() if g in listing}
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
        return await self._index(generation, listing)

    async def _index(
        self, generation: str, listing: dict[str, RecordKeys], *, again: bool = True
    ) -> GenerationIndex:
        view = listing[generation].view()
        keys = tuple(ref.key for ref in view)
        built = self._indexes.get(generation)
        if built is not None and built[0] == keys:
            return built[1]
        missing = [ref for ref in view if ref.key not in self._records]
        try:
            records = await self.replica.index.fetch_records(generation, missing)
        except ObjectNotFound:
            # GC or a compaction removed a record since the listing: list once more.
            fresh = (await self.replica.index.list_record_keys(generation)).get(generation)
            if fresh is None or not again:
                raise
            listing[generation] = fresh
            return await self._index(generation, listing, again=False)
        self.fetched_records += len(records)
        for ref, record in zip(missing, records, strict=True):
            self._records[ref.key] = record
        index = GenerationIndex.from_records(generation, [self._records[k] for k in keys])
        self._indexes[generation] = (keys, index)
        return index
