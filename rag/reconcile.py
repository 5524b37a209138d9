"""Repairing the index after an interrupted write: the manifest is checked against the chunk ids
the store actually holds, per source, and every source a journaled write was changing is finished."""

from __future__ import annotations

import logging
from pathlib import Path

from rag import corpus, journal
from rag.errors import IngestError
from rag.manifest import Manifest
from rag.store import Store

logger = logging.getLogger(__name__)


def reconcile(store: Store, manifest: Manifest, corpus_dir: Path) -> set[str]:
    """Make ``manifest`` and ``store`` agree; return the sources that must be indexed again.

    Cheap when nothing went wrong (no journal, and the store holds as many chunks as the manifest
    lists); otherwise every stored id is read. Then:

    * a removal the journal names is finished (file, chunks, manifest entry);
    * chunks of a source that is in no manifest entry, or whose ids differ from the entry's,
      and entries whose chunks are missing, are "suspect": the source is indexed again if its file
      is in the corpus (vectors of stored chunks are reused, nothing is embedded twice), and its
      chunks and entry are dropped if it is not.

    Call with the ingest lock held; the manifest is saved and the journal cleared before returning.
    """
    data_dir = manifest.path.parent
    pending = journal.pending_sources(data_dir)
    listed = sum(e.chunks for e in manifest.entries.values())
    if not pending and store.count() == listed:
        return set()
    held = store.sources()
    suspect = {s for s, ids in held.items() if s not in manifest.entries or set(manifest.entries[s].chunk_ids) != ids}
    suspect |= {s for s, e in manifest.entries.items() if e.chunks and s not in held}
    removals = [s for s, op in pending.items() if op == "remove"]
    suspect |= {s for s, op in pending.items() if op != "remove" and s != "*"}
    for source in removals:
        try:
            corpus.delete(source, corpus_dir)
        except IngestError as exc:
            logger.warning("could not finish removing %s: %s", source, exc)
    doomed = [s for s in sorted(suspect | set(removals))
              if s in removals or not corpus.storable(s) or not (corpus_dir / s).is_file()]
    store.delete([i for s in doomed for i in held.get(s, ())])
    for source in doomed:
        manifest.entries.pop(source, None)
    again = suspect - set(doomed)
    for source in again:
        entry = manifest.entries.get(source)
        if entry is not None:
            entry.file_hash = ""  # never "unchanged": its chunks are not what the entry lists
    manifest.save()
    journal.finish(data_dir)
    if doomed or again:
        logger.info("repaired an interrupted write: dropped %s, re-indexing %s", doomed, sorted(again))
    return again
