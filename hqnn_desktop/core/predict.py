"""The batch classification engine shared by the CLI, the GUI and the benchmarks.

Images are decoded by a pool of threads running ahead of the model (bounded,
so memory stays flat however large the folder), gathered into batches, passed
once through the pack's backbone, and the features are handed to every
requested head. Results come back per image, in input order, as soon as their
batch is done; a file that cannot be used yields a result with ``error`` set,
and the run goes on.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from .calibration import calibrated_softmax, temperature_of
from .cell_crop import is_grey
from .imageio import ImageError, load_rgb
from .inputs import ImageResult, Window, iter_image_paths
from .orientations import card_orientations, check_count, views
from .packs import Pack
from .runtime import choose_precision, tune_allocator


def _decode(path: str, pack: Pack) -> tuple[str, np.ndarray | None, Window | None, str | None, int]:
    """(path, model input, cell window, reason it is unusable, pictures in the file)."""
    try:
        picture = load_rgb(path)
        return path, *pack.prepare(picture), None, picture.info.get("frames", 1)
    except ImageError as exc:
        return path, None, None, str(exc), 1
    except Exception as exc:  # noqa: BLE001 (a decoder bug must not stop a batch of thousands)
        return path, None, None, f"The image could not be read ({type(exc).__name__}: {exc}).", 1


__all__ = ["Engine", "ImageResult", "iter_image_paths"]


class Engine:
    """Classify images with a loaded pack; one backbone pass feeds every requested head.

    A model fine-tuned end to end with its own backbone (``pack.model_extractors``)
    gets its own pass; the models on the shared backbone still share one, and the
    shared pass also gives the features of the "unlike training data" flag.

    ``precision`` is ``auto`` (bf16 autocast for the backbone only where the
    device computes it natively and the pack passed its bf16 check, else fp32),
    ``fp32`` or ``bf16``; see :mod:`core.runtime`. ``stage_seconds`` adds up the
    time spent in the backbone and in each head, for the benchmarks.

    Probabilities are softmax(logits / T) with each model's temperature from the
    card (:mod:`core.calibration`; T = 1 for packs without one), averaged over the
    picture's ``orientations`` (:mod:`core.orientations`; the card's choice unless
    given). Codes, embeddings and the features of the flag are the picture's as it is. A picture
    without colour is flagged too when the pack learnt from colour pictures: its features can look
    ordinary while the colour that tells the stains apart is gone.
    """

    def __init__(self, pack: Pack, models: tuple[str, ...] | None = None, batch_size: int = 32,
                 decode_workers: int | None = None, device: str | None = None,
                 precision: str = "auto", orientations: int | None = None) -> None:
        models = tuple(pack.heads) if models is None else models  # None: every model the pack has
        unknown = [m for m in models if m not in pack.heads]
        if unknown:
            raise ValueError(f"Unknown or unloaded model(s): {', '.join(unknown)}.")
        tune_allocator()
        self.pack = pack
        self.models = tuple(models)
        self.batch_size = max(1, batch_size)
        self.decode_workers = decode_workers or max(2, min(8, (os.cpu_count() or 2)))
        self.device = torch.device(device or "cpu")
        self.precision = choose_precision(pack.card, self.device, precision)
        self.temperatures = {kind: temperature_of(pack.card, kind) for kind in self.models}
        self.orientations = card_orientations(pack.card) if orientations is None else orientations
        check_count(self.orientations)
        self.pack.extractor.to(self.device, memory_format=torch.channels_last).eval()
        for kind in self.models:
            self.pack.extractor_for(kind).to(self.device, memory_format=torch.channels_last).eval()
            self.pack.heads[kind].to(self.device).eval()
        self.stage_seconds: dict[str, float] = defaultdict(float)

    def warm_up(self) -> None:
        """Run one blank image through every model, so that the first real image is not the one
        paying for kernel selection and the circuit's first evaluation (seconds, once)."""
        size = self.pack.input_size
        self.run_batch(np.full((1, size, size, 3), 255, dtype=np.uint8))
        self.stage_seconds.clear()

    @torch.inference_mode()
    def features(self, images: np.ndarray, kind: str | None = None) -> torch.Tensor:
        """Backbone features (fp32) of a uint8 NHWC batch, in the engine's precision: of the
        shared backbone, or with ``kind`` of the backbone that model's head reads."""
        extractor = self.pack.extractor if kind is None else self.pack.extractor_for(kind)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return extractor(x).float()

    @torch.inference_mode()
    def run_batch(self, images: np.ndarray, keep_latents: bool = False
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, dict, dict]:
        """Calibrated probabilities per model and backbone features for a uint8 NHWC batch (codes
        and embeddings on request)."""
        shared = self._timed_features(images)
        proba, codes, embs = {}, {}, {}
        for kind in self.models:
            own = self._timed_features(images, kind) if kind in self.pack.model_extractors else shared
            start = time.perf_counter()
            head = self.pack.heads[kind]
            summed = None
            for j, feats in enumerate(own):
                code, emb = head.embed(feats)
                p = calibrated_softmax(head.classifier(emb).float(), self.temperatures[kind])
                summed = p if summed is None else summed + p
                if j == 0 and keep_latents:
                    codes[kind], embs[kind] = code.cpu().numpy(), emb.float().cpu().numpy()
            proba[kind] = (summed / len(own)).cpu().numpy()
            self.stage_seconds[kind] += time.perf_counter() - start
        return proba, shared[0].cpu().numpy(), codes, embs

    def _timed_features(self, images: np.ndarray, kind: str | None = None) -> list[torch.Tensor]:
        """The backbone's features of every orientation of the batch (as it is first), timed."""
        start = time.perf_counter()
        out = [self.features(view, kind) for view in views(images, self.orientations)]
        self.stage_seconds["backbone"] += time.perf_counter() - start
        return out

    def classify(self, paths: Iterable[str], cancelled: Callable[[], bool] = lambda: False,
                 keep_latents: bool = False) -> Iterator[ImageResult]:
        """Yield one :class:`ImageResult` per path, in order, decoding ahead in threads."""
        ahead = self.batch_size * 3
        pending: queue.Queue[Future | BaseException | None] = queue.Queue(maxsize=ahead)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.decode_workers, thread_name_prefix="decode")

        def feed() -> None:
            end: BaseException | None = None  # a failing path source must not look like the end
            try:
                for path in paths:
                    if stop.is_set():
                        break
                    fut = pool.submit(_decode, path, self.pack)
                    while not stop.is_set():
                        try:
                            pending.put(fut, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as exc:  # noqa: BLE001 (re-raised to the consumer, Ctrl+C included)
                end = exc
            finally:
                while True:
                    try:
                        pending.put(end, timeout=0.1)
                        break
                    except queue.Full:
                        if stop.is_set():
                            break

        feeder = threading.Thread(target=feed, name="feeder", daemon=True)
        feeder.start()
        try:
            done = False
            while not done:
                batch: list[tuple[str, np.ndarray | None, Window | None, str | None, int]] = []
                while len(batch) < self.batch_size:
                    fut = pending.get()
                    if isinstance(fut, BaseException):
                        raise fut
                    if fut is None:
                        done = True
                        break
                    batch.append(fut.result())
                if cancelled():
                    return
                yield from self._finish(batch, keep_latents)
        finally:
            stop.set()
            while feeder.is_alive():
                try:
                    pending.get_nowait()
                except queue.Empty:
                    feeder.join(timeout=0.05)
            pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, batch: list, keep_latents: bool) -> Iterator[ImageResult]:
        good = [i for i, (_, arr, _, _, _) in enumerate(batch) if arr is not None]
        results = [ImageResult(path=p, error=err, window=window, frames=frames)
                   for p, _, window, err, frames in batch]
        if good:
            images = np.stack([batch[i][1] for i in good])
            proba, feats, codes, embs = self.run_batch(images, keep_latents)
            unlike = self.pack.ood.flags(feats) if self.pack.ood is not None else None
            for j, i in enumerate(good):
                results[i].proba = {k: v[j] for k, v in proba.items()}
                if unlike is not None:
                    results[i].unlike_training = bool(unlike[j])
                if self.pack.learnt_colour and is_grey(images[j]):
                    results[i].no_colour = results[i].unlike_training = True
                if keep_latents:
                    results[i].features = feats[j]
                    results[i].codes = {k: v[j] for k, v in codes.items()}
                    results[i].embeddings = {k: v[j] for k, v in embs.items()}
        yield from results
