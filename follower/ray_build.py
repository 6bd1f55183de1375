"""``follower index build --ray``: the index build spread over the workers of a Ray cluster.

The corpus's files are cut into contiguous shards (several per worker, so a slow
shard does not hold the others up); one Ray actor per worker loads the bundle once,
with one onnxruntime thread, and builds shard after shard with the ordinary index
build (:func:`follower.shard.build_shard`); the shards are merged in corpus order
(:func:`follower.merge.merge_indexes`), so the result equals the serial build.

Nothing is assumed about the workers' disks: the bundle's files and each shard's
MIDI bytes travel through Ray's object store, and the ``follower`` package itself
goes with the job (``runtime_env`` ``py_modules``). Each node needs Python with this
project's dependencies (``pip install 'scorefollow[scale]'``, as on the driver).
Without ``address`` a local Ray instance with one worker per core is started and
stopped again; with it (``ray://HOST:10001`` or ``auto``) the build joins that cluster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import BadMidiError, BundleError, MissingToolError
from .index import Index, find_midi

INSTALL_HINT = "pip install 'scorefollow[scale]' (or: pip install 'ray[default]')"
SHARDS_PER_WORKER = 4


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise MissingToolError(f"--ray needs Ray, which is not installed ({e}); {INSTALL_HINT}") from e
    return ray


class ShardBuilder:
    """One worker: the bundle written to its own disk, then shards built one after another."""

    def __init__(self, bundle_files: dict, hop_frames: int, dtype_name: str, score_encoder: str = "full"):
        from .bundle import load_bundle, open_score_encoder

        self.tmp = tempfile.TemporaryDirectory(prefix="follower-shard-")
        bundle_dir = Path(self.tmp.name) / "bundle"
        bundle_dir.mkdir()
        for name, data in bundle_files.items():
            (bundle_dir / name).write_bytes(data)
        self.bundle = load_bundle(bundle_dir, threads=1, score_encoder=score_encoder)
        # sleeping between batches, as the process-pool workers do: other workers may share the cores
        self.bundle.score = open_score_encoder(bundle_dir, self.bundle.config, score_encoder, threads=1,
                                               spinning=False)
        self.hop_frames, self.dtype = int(hop_frames), np.dtype(dtype_name)

    def build(self, i: int, shard: list[tuple[bytes, str, str]]):
        """(i, index) of shard ``i`` = [(MIDI bytes, piece id, path on the driver)]."""
        from .shard import build_shard

        folder = Path(self.tmp.name) / f"shard{i}"
        folder.mkdir()
        files = []
        for k, (data, pid, _) in enumerate(shard):
            local = folder / f"{k:05d}.mid"
            local.write_bytes(data)
            files.append((local, pid))
        try:
            index = build_shard(files, self.bundle, hop_frames=self.hop_frames, dtype=self.dtype,
                                originals=[orig for _, _, orig in shard])
        except BadMidiError as e:  # no readable file in this shard: the driver reports each one
            index = e
        for f, _ in files:
            f.unlink()
        folder.rmdir()
        return i, index

    def close(self) -> bool:
        """Remove this worker's bundle copy; ``ray.shutdown`` kills actors without running finalizers, so
        without this call every build left one folder of the bundle's size in the workers' temp dir."""
        self.tmp.cleanup()
        return True


def _bundle_files(bundle_dir: Path) -> dict:
    from .bundle import AUDIO_ONNX, CONFIG_JSON, OPTIONAL_FILES, SCORE_ONNX

    names = (CONFIG_JSON, AUDIO_ONNX, SCORE_ONNX) + tuple(n for n in OPTIONAL_FILES if (bundle_dir / n).is_file())
    return {name: (bundle_dir / name).read_bytes() for name in names}


def build_index_ray(paths, bundle, *, hop_frames: int = 4, dtype=np.float16, address: str | None = None,
                    workers: int | None = None, progress: bool = True) -> Index:
    """The index of every readable MIDI file under ``paths``, built on Ray; equal to ``build_index``'s.

    Meant for a process that ends after the build, as ``follower index build --ray`` does: Ray's core
    keeps native threads (gRPC pollers, its event engine) alive after ``ray.shutdown()``, and a
    long-lived process that goes on to other work has been seen to crash with SIGSEGV as it exits.
    From a notebook or a service, run the CLI as a subprocess instead.
    """
    from tqdm import tqdm

    from .merge import merge_indexes

    if int(hop_frames) < 1:
        raise BundleError(f"hop_frames={hop_frames} must be a positive integer")
    ray = import_ray()
    files = find_midi(paths)
    if not files:
        raise BadMidiError(f"no .mid/.midi files under {', '.join(map(str, paths))}")
    t0 = time.time()
    started = not ray.is_initialized()
    import follower

    runtime_env = {"py_modules": [follower], "env_vars": {"OMP_NUM_THREADS": "1"}}
    try:
        if started:
            ray.init(address=address, num_cpus=workers if address is None else None, include_dashboard=False,
                     log_to_driver=False, runtime_env=runtime_env, logging_level="ERROR")
    except ConnectionError as e:
        raise BundleError(f"cannot reach the Ray cluster at {address} ({e}); check --ray-address "
                          "(ray://HOST:10001, or auto on a cluster node)") from e
    try:
        n_workers = int(workers or ray.cluster_resources().get("CPU", 1))
        n_workers = max(1, min(n_workers, len(files)))
        shards = _shards(files, n_workers)
        bundle_ref = ray.put(_bundle_files(Path(bundle.path)))
        Actor = ray.remote(num_cpus=1)(ShardBuilder)
        actors = [Actor.remote(bundle_ref, int(hop_frames), np.dtype(dtype).name,
                               getattr(bundle, "score_encoder", "full")) for _ in range(n_workers)]
        pool = ray.util.ActorPool(actors)
        payload = ([(Path(f).read_bytes(), pid, str(f)) for f, pid in shard] for shard in shards)
        parts: dict = {}
        bar = tqdm(total=len(files), desc=f"index (ray, {n_workers} workers)", unit="piece", disable=not progress,
                   dynamic_ncols=True)
        for i, result in pool.map_unordered(lambda a, v: a.build.remote(*v), enumerate(payload)):
            parts[i] = result
            bar.update(len(shards[i]))
        bar.close()
        ray.get([a.close.remote() for a in actors])
    finally:
        if started:
            ray.shutdown()
    skipped_whole = [(shards[i], parts.pop(i)) for i in sorted(parts) if isinstance(parts[i], BadMidiError)]
    if not parts:
        raise BadMidiError(f"none of the {len(files)} MIDI files could be read; first problem: {skipped_whole[0][1]}")
    order = sorted(parts)
    index, _ = merge_indexes([parts[i] for i in order], [f"shard{i}" for i in order])
    skipped = [s for i in sorted(set(range(len(shards))) - set(order)) for s in _whole_shard_skips(shards[i])]
    h = index.header
    for key in ("merged_from", "duplicates"):
        h.pop(key, None)
    rank = {str(f): k for k, (f, _) in enumerate(files)}
    h.update(sources=[str(p) for p in paths], build_s=round(time.time() - t0, 1),
             skipped=sorted(h["skipped"] + skipped, key=lambda s: rank.get(s["file"], -1)),
             bundle=str(bundle.path), built_with=f"ray, {n_workers} workers")
    return index


def _shards(files, n_workers):
    from .shard import shard_files

    return shard_files(files, min(len(files), SHARDS_PER_WORKER * n_workers))


def _whole_shard_skips(shard):
    """Every file of a shard none of whose files could be read: the reason for each, read here."""
    from .midi import load_midi

    out = []
    for f, _ in shard:
        try:
            load_midi(f)
            reason = f"{f}: could not be embedded"
        except BadMidiError as e:
            reason = str(e)
        out.append({"file": str(f), "reason": reason})
    return out

