"""Training protocol: adapt the backbone, then train the three heads on identical frozen features.

Stage 1, :func:`adapt_backbone`: the backbone is fine-tuned end to end with an
n-dimensional tanh bottleneck and a linear classifier on augmented training
images (AdamW, one-cycle learning rate, label smoothing; bf16 on a GPU).
Stage 2, :func:`extract_features`: the adapted backbone turns every image into
a feature vector once. Stage 3, :func:`train_heads`: HQNN, Classical Matched and
Baseline heads are trained on exactly those features, with the same seed,
initialisation order, batch order and budget, so they differ only in the
transformation stage. Optional stage 4, :func:`fine_tune_models`: each trained
head is fine-tuned end to end with its own copy of the backbone, all with the
same seed, budget, augmentation and schedule; stages 1 and 4 share one training
loop, :func:`train_end_to_end`.

Everything takes a :class:`Callbacks` (progress, cancel) so the CLI and the
GUI's Training tab drive the same code. Checkpoints are written atomically at
every epoch and a run resumes from the last one.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import augment_batch
from .backbones import Normalize, build_backbone, get_spec, load_state_file
from .configs import AdaptConfig, HeadConfig
from .heads import MODEL_KINDS, MODEL_TITLES, Head
from .storage import atomic_torch_save


class TrainingCancelled(Exception):
    """Raised when the user cancels; the last checkpoint on disk stays valid."""


class TrainingDiverged(ValueError):
    """The loss became infinite or not a number: the weights are garbage, so nothing may be saved."""


def _check_finite(loss: float, epoch: int, what: str, advice: str) -> None:
    """Stop a run whose loss blew up, in words, rather than save a pack that labels every cell alike."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"Training failed at epoch {epoch} of the {what}: the error it minimises became "
            f"{'infinite' if math.isinf(loss) else 'not a number'}, so the model learnt nothing usable and "
            f"no pack was saved. {advice}")


def _lr_advice(lr: float, option: str) -> str:
    return f"Its learning rate ({lr:g}, {option}) is probably too high; try one ten times smaller."


@dataclass
class Callbacks:
    """Hooks the caller provides: ``progress(stage, done, total, metrics)`` and ``cancelled()``."""

    progress: Callable[[str, int, int, dict], None] = lambda stage, done, total, metrics: None
    cancelled: Callable[[], bool] = lambda: False

    def check(self) -> None:
        if self.cancelled():
            raise TrainingCancelled("Training was cancelled.")


def choose_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


# --------------------------------------------------------------------------- stage 1


class FeatureExtractor(nn.Module):
    """uint8 NHWC images -> pooled backbone features: the shared first stage of every pack."""

    def __init__(self, backbone_name: str, pretrained: bool = True) -> None:
        super().__init__()
        spec = get_spec(backbone_name)
        self.normalize = Normalize(spec.mean, spec.std)
        self.backbone = build_backbone(backbone_name, pretrained=pretrained)
        self.feature_dim = spec.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


class AdaptationModel(nn.Module):
    """Backbone with a bounded bottleneck and classifier, trained end to end in stage 1."""

    def __init__(self, extractor: FeatureExtractor, bottleneck: int, n_classes: int) -> None:
        super().__init__()
        self.extractor = extractor
        self.bottleneck = nn.Linear(extractor.feature_dim, bottleneck)
        self.classifier = nn.Linear(bottleneck, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.tanh(self.bottleneck(self.extractor(x))))


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def initial_extractor(cfg: AdaptConfig) -> FeatureExtractor:
    """The backbone a run starts from: the ImageNet weights, or another pack's (``cfg.start_from``)."""
    extractor = FeatureExtractor(cfg.backbone, cfg.pretrained and cfg.start_from is None)
    if cfg.start_from is not None:
        extractor.load_state_dict(load_state_file(cfg.start_from))
    return extractor


def adapt_backbone(images: np.ndarray | torch.Tensor, targets: np.ndarray, n_classes: int,
                   cfg: AdaptConfig, device: str | None = None,
                   checkpoint: Path | None = None, callbacks: Callbacks | None = None,
                   val: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[AdaptationModel, list[dict]]:
    """Fine-tune a backbone on uint8 NHWC ``images``; returns the adapted model (its
    ``extractor`` is what packs keep) and the per-epoch history."""
    seed_everything(cfg.seed)
    model = AdaptationModel(initial_extractor(cfg), cfg.bottleneck, n_classes)
    return train_end_to_end(model, images, targets, cfg, device, checkpoint, callbacks, val, stage="adapt")


class EndToEndModel(nn.Module):
    """A feature extractor and one trained head as a single image classifier (per-model fine-tuning).

    Only the extractor runs under autocast; the head gets fp32 features, as in the
    engine, because the circuit simulation needs full precision.
    """

    def __init__(self, extractor: FeatureExtractor, head: Head) -> None:
        super().__init__()
        self.extractor = extractor
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.extractor(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.head(features.float())


def fine_tune_models(extractor: FeatureExtractor, heads: dict[str, Head], images: np.ndarray | torch.Tensor,
                     targets: np.ndarray, cfg: AdaptConfig, device: str | None = None,
                     checkpoints: dict[str, Path] | None = None, callbacks: Callbacks | None = None,
                     val: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> tuple[dict[str, FeatureExtractor], dict[str, Head], dict[str, list[dict]]]:
    """Fine-tune each trained head end to end with its own copy of ``extractor``.

    Every model starts from the same extractor weights and gets the same seed,
    epochs, batch order, augmentation and learning-rate schedule (``cfg``), so
    the three still differ only in their transformation stage. The inputs are
    left untouched; returns the per-model extractors, heads and histories.
    """
    extractors, tuned, histories = {}, {}, {}
    for kind, head in heads.items():
        seed_everything(cfg.seed)
        model = EndToEndModel(copy.deepcopy(extractor).cpu().float(), copy.deepcopy(head).cpu())
        model.requires_grad_(True)  # the bottleneck frozen in stage 3 moves with the backbone here
        identity = f"{kind} {asdict(cfg)} {_state_digest(model)}"
        final, histories[kind] = train_end_to_end(
            model, images, targets, cfg, device, (checkpoints or {}).get(kind), callbacks, val,
            stage="fine_tune_model", identity=identity, info={"model": kind})
        extractors[kind], tuned[kind] = final.extractor.eval(), final.head.eval()
    return extractors, tuned, histories


def _state_digest(model: nn.Module) -> str:
    """sha256 of a model's weights: a checkpoint resumes only the run that started from them."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_end_to_end(model: nn.Module, images: np.ndarray | torch.Tensor, targets: np.ndarray,
                     cfg: AdaptConfig, device: str | None, checkpoint: Path | None,
                     callbacks: Callbacks | None, val: tuple[np.ndarray, np.ndarray] | None, *,
                     stage: str, identity: str | None = None, info: dict | None = None
                     ) -> tuple[nn.Module, list[dict]]:
    """Train ``model`` (uint8 NHWC images -> logits) end to end: the loop of stage 1 and of
    per-model fine-tuning, so both share augmentation, mixup, EMA, schedule and checkpoints.

    Progress goes out as ``stage`` (steps) and ``stage + "_epoch"`` (epoch records), with
    ``info`` added to the metrics. A checkpoint whose ``identity`` (default: the
    settings) differs from this run's is ignored rather than mixed in. Returns the
    trained model (its EMA when enabled) on the CPU in fp32, and the per-epoch history.
    """
    callbacks = callbacks or Callbacks()
    info = info or {}
    identity = identity or str(asdict(cfg))
    dev = choose_device(device)
    model = model.to(dev).to(memory_format=torch.channels_last)
    x_all = torch.as_tensor(images).to(dev)
    y_all = torch.as_tensor(np.asarray(targets), dtype=torch.long).to(dev)
    steps_per_epoch = max(1, len(y_all) // cfg.batch_size)
    opt = _adamw(model, cfg.lr, cfg.weight_decay)
    sched = _one_cycle(opt, cfg.lr, cfg.epochs * steps_per_epoch, pct_start=0.15)
    ema = None
    if cfg.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    start_epoch, history = _resume(checkpoint, identity, dev, model, ema, opt, sched)
    for epoch in range(start_epoch, cfg.epochs):
        record = _train_epoch(
            model, ema, opt, sched, x_all, y_all, cfg, epoch, steps_per_epoch, callbacks,
            lambda step, e=epoch: callbacks.progress(stage, e * steps_per_epoch + step + 1,
                                                     cfg.epochs * steps_per_epoch, {**info, "epoch": e + 1}))
        if stage == "adapt":
            _check_finite(record["loss"], epoch + 1, "backbone fine-tuning",
                          "Train without backbone fine-tuning, or check that the images are cells.")
        else:
            _check_finite(record["loss"], epoch + 1, "per-model fine-tuning",
                          _lr_advice(cfg.lr, "--fine-tune-per-model-lr"))
        if val is not None:
            record["val_accuracy"] = _adaptation_accuracy(ema.module if ema else model, val, dev,
                                                          cfg.batch_size)
        history.append(record)
        callbacks.progress(f"{stage}_epoch", epoch + 1, cfg.epochs, {**info, **record})
        if checkpoint is not None:
            atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                               **({"ema": ema.state_dict()} if ema is not None else {}),
                               "scheduler": sched.state_dict(), "epoch": epoch + 1,
                               "history": _history_to_tensor(history), "config": identity},
                              checkpoint)
    final = ema.module if ema is not None else model
    final.eval()
    return final.cpu().float(), history


def _adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and norm scales (decaying those only hurts)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _resume(checkpoint: Path | None, identity: str, dev: torch.device, model: nn.Module, ema: nn.Module | None,
            opt: torch.optim.Optimizer, sched) -> tuple[int, list[dict]]:
    """Load a run's checkpoint into the training state; returns (epochs done, history)."""
    if checkpoint is None or not checkpoint.exists():
        return 0, []
    state = torch.load(checkpoint, map_location=dev, weights_only=True)
    if state.get("config") != identity:
        return 0, []  # a checkpoint of other settings: start afresh rather than mix runs
    model.load_state_dict(state["model"])
    if ema is not None and "ema" in state:
        ema.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return int(state["epoch"]), _history_from_tensor(state["history"])


def _train_epoch(model: nn.Module, ema: nn.Module | None, opt: torch.optim.Optimizer, sched,
                 x_all: torch.Tensor, y_all: torch.Tensor, cfg: AdaptConfig, epoch: int, steps_per_epoch: int,
                 callbacks: Callbacks, step_done: Callable[[int], None]) -> dict:
    """One epoch of end-to-end training; every random draw is seeded by (seed, epoch), so a
    resumed run repeats it and every model of a per-model fine-tuning sees the same batches."""
    dev = x_all.device
    model.train()
    torch.manual_seed(cfg.seed * 1000 + epoch)  # drop-connect draws: resuming repeats them
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(y_all), generator=gen).to(dev)
    t0, seen = time.time(), 0
    total_loss = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    for step in range(steps_per_epoch):
        callbacks.check()
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        xb = augment_batch(x_all[idx], cfg.augment, gen)
        yb = y_all[idx]
        lam, perm = 1.0, None
        if cfg.mixup > 0:
            lam = float(np.random.default_rng(cfg.seed * 100_003 + epoch * 1009 + step).beta(cfg.mixup, cfg.mixup))
            perm = torch.randperm(len(idx), generator=gen).to(dev)
            xb = lam * xb + (1 - lam) * xb[perm]
        with _autocast(dev):
            logits = model(xb)
            loss = lam * F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            if perm is not None:
                loss = loss + (1 - lam) * F.cross_entropy(logits.float(), yb[perm],
                                                          label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        total_loss += loss.detach() * len(idx)
        correct += (logits.argmax(1) == yb).sum()
        seen += len(idx)
        step_done(step)
    return {"epoch": epoch + 1, "loss": float(total_loss) / seen, "train_accuracy": int(correct) / seen,
            "seconds": time.time() - t0}


def _history_to_tensor(history: list[dict]) -> dict:
    keys = sorted({k for r in history for k in r})
    return {k: torch.tensor([float(r.get(k, math.nan)) for r in history]) for k in keys}


def _history_from_tensor(data: dict) -> list[dict]:
    n = len(next(iter(data.values()))) if data else 0
    return [{k: (int(v[i]) if k == "epoch" else float(v[i])) for k, v in data.items()} for i in range(n)]


@torch.no_grad()
def _adaptation_accuracy(model: AdaptationModel, val: tuple[np.ndarray, np.ndarray],
                         dev: torch.device, batch: int) -> float:
    model.eval()
    x, y = val
    correct = 0
    for i in range(0, len(y), batch):
        xb = torch.as_tensor(x[i:i + batch]).to(dev)
        with _autocast(dev):
            pred = model(xb).argmax(1).cpu().numpy()
        correct += int((pred == np.asarray(y[i:i + batch])).sum())
    model.train()
    return correct / max(1, len(y))


# --------------------------------------------------------------------------- stage 2


@torch.no_grad()
def extract_features(extractor: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 64,
                     device: str | None = None, callbacks: Callbacks | None = None) -> np.ndarray:
    """Pooled features (N, D) float32 of uint8 NHWC ``images``."""
    callbacks = callbacks or Callbacks()
    dev = choose_device(device)
    extractor = extractor.to(dev).eval()
    out = []
    for i in range(0, len(images), batch_size):
        callbacks.check()
        xb = torch.as_tensor(images[i:i + batch_size]).to(dev)
        with _autocast(dev):
            out.append(extractor(xb).float().cpu())
        callbacks.progress("features", min(i + batch_size, len(images)), len(images), {})
    return torch.cat(out).numpy() if out else np.zeros((0, getattr(extractor, "feature_dim", 0)), np.float32)


# --------------------------------------------------------------------------- stage 3


def supcon_loss(embedding: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) on L2-normalised embeddings."""
    z = F.normalize(embedding, dim=1)
    sim = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, -1e9)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (targets.unsqueeze(0) == targets.unsqueeze(1)) & ~self_mask
    n_pos = positives.sum(1)
    valid = n_pos > 0
    if not valid.any():
        return embedding.sum() * 0.0
    mean_log_prob = (log_prob * positives).sum(1)[valid] / n_pos[valid]
    return -mean_log_prob.mean()


def _one_cycle(opt: torch.optim.Optimizer, lr: float, total_steps: int, pct_start: float):
    """One-cycle schedule that also works for very short runs (tiny datasets, tests)."""
    total = max(total_steps, 20)
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                               pct_start=max(pct_start, 2.0 / total))


def _fit_head(head: Head, x: torch.Tensor, y: torch.Tensor, cfg: HeadConfig, epochs: int,
              callbacks: Callbacks, on_epoch: Callable[[int, dict], None], what: str = "") -> None:
    """Train ``head`` on features for ``epochs``: AdamW, one-cycle, feature dropout, optional SupCon."""
    steps = math.ceil(len(y) / cfg.batch_size)
    params = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _one_cycle(opt, cfg.lr, epochs * steps, pct_start=0.1)
    for epoch in range(epochs):
        head.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        order = torch.randperm(len(y), generator=gen)
        t0, total, correct = time.time(), 0.0, 0
        for s in range(steps):
            callbacks.check()
            idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.feature_dropout > 0:
                keep = torch.rand(xb.shape, generator=gen) >= cfg.feature_dropout
                xb = xb * keep / (1 - cfg.feature_dropout)
            _, emb = head.embed(xb)
            logits = head.classifier(emb)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            if cfg.contrastive_weight > 0:
                loss = loss + cfg.contrastive_weight * supcon_loss(emb, yb, cfg.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        _check_finite(total, epoch + 1, what or f"{MODEL_TITLES[head.kind]} head training",
                      _lr_advice(cfg.lr, "--lr, or Learning rate (heads) in the Training tab"))
        on_epoch(epoch, {"epoch": epoch + 1, "loss": total / len(y), "train_accuracy": correct / len(y),
                         "seconds": time.time() - t0})
    head.eval()


def _recorder(head: Head, kind: str, history: list[dict], val: tuple[np.ndarray, np.ndarray] | None,
              callbacks: Callbacks, done_before: int, total: int) -> Callable[[int, dict], None]:
    """The per-epoch hook of one head: validation figures, history, progress."""
    def on_epoch(epoch: int, record: dict) -> None:
        if val is not None:
            record.update(_head_val_metrics(head, val))
            head.train()
        history.append(record)
        callbacks.progress("heads", done_before + epoch + 1, total, {"model": kind, **record})

    return on_epoch


def train_heads(train_features: np.ndarray, train_targets: np.ndarray, n_classes: int, cfg: HeadConfig,
                kinds: tuple[str, ...] = MODEL_KINDS, val: tuple[np.ndarray, np.ndarray] | None = None,
                callbacks: Callbacks | None = None) -> tuple[dict[str, Head], dict[str, list[dict]]]:
    """Train one head per kind on the same frozen features; returns heads and per-epoch history.

    A shared warm-up first fits a bottleneck and linear classifier for
    ``cfg.warmup_epochs``; every head then starts from that same bottleneck,
    frozen by default (``cfg.freeze_bottleneck``), with the same seed, batch
    order and epoch budget, so the models differ only in their transformation
    stage and see the identical n-dimensional code; each classifier starts from the
    warm-up's, refitted through the head's transformation (:func:`_start_from_warm_up`).
    Without the warm-up a bottleneck
    trained from scratch through the circuit converged slowly and unevenly
    across seeds (training/README.md records the comparison).
    """
    callbacks = callbacks or Callbacks()
    x = torch.as_tensor(train_features, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(train_targets), dtype=torch.long)
    total_epochs = cfg.warmup_epochs + len(kinds) * cfg.epochs
    shared_bottleneck = None
    if cfg.warmup_epochs > 0:
        seed_everything(cfg.seed)
        warm = Head("baseline", x.shape[1], cfg.n_qubits, cfg.layers, n_classes)
        _fit_head(warm, x, y, replace(cfg, contrastive_weight=0.0), cfg.warmup_epochs, callbacks,
                  lambda e, r: callbacks.progress("heads", e + 1, total_epochs, {"model": "warm-up", **r}),
                  what="bottleneck warm-up")
        shared_bottleneck = warm.bottleneck.state_dict()
    heads, histories = {}, {}
    for k_index, kind in enumerate(kinds):
        seed_everything(cfg.seed)
        head = Head(kind, x.shape[1], cfg.n_qubits, cfg.layers, n_classes)
        if shared_bottleneck is not None:
            head.bottleneck.load_state_dict(shared_bottleneck)
            head.bottleneck.requires_grad_(not cfg.freeze_bottleneck)
            _start_from_warm_up(head, warm, x)
        history: list[dict] = []
        on_epoch = _recorder(head, kind, history, val, callbacks,
                             cfg.warmup_epochs + k_index * cfg.epochs, total_epochs)
        _fit_head(head, x, y, cfg, cfg.epochs, callbacks, on_epoch)
        heads[kind], histories[kind] = head, history
    return heads, histories


@torch.no_grad()
def _start_from_warm_up(head: Head, warm: Head, features: torch.Tensor) -> None:
    """Start ``head``'s classifier from the warm-up's, each input's weights signed as the
    head's transformation at its start carries that code dimension (same or reversed sign).

    Every head then begins from the warm-up's decisions. Before, each began from the same
    random classifier, which the circuit at its identity start reads with every sign
    reversed (angle pi/2 (z + 1) gives <Z> = -sin(pi z / 2)): with few optimiser steps
    (a small dataset) the HQNN never recovered and scored below chance while the Baseline,
    whose random start the warm-up had barely moved, looked perfect. (A least-squares refit
    of the warm-up's logits was tried too: on BCI its weights made the HQNN unstable across
    seeds.)
    """
    code = warm.encode(features)
    carried = (head.transform(code) * code).sum(dim=0)
    sign = torch.where(carried < 0, -1.0, 1.0)
    head.classifier.weight.copy_(warm.classifier.weight * sign)
    head.classifier.bias.copy_(warm.classifier.bias)


def continue_heads(heads: dict[str, Head], train_features: np.ndarray, train_targets: np.ndarray,
                   cfg: HeadConfig, val: tuple[np.ndarray, np.ndarray] | None = None,
                   callbacks: Callbacks | None = None) -> dict[str, list[dict]]:
    """Train already trained heads further (in place) for ``cfg.epochs``: fine-tuning on new labels.

    The bottleneck stays as it is when ``cfg.freeze_bottleneck``, so every head keeps
    reading the code it was trained on and only its transformation and classifier
    move; with a small learning rate this corrects mistakes without forgetting the rest.
    """
    callbacks = callbacks or Callbacks()
    x = torch.as_tensor(train_features, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(train_targets), dtype=torch.long)
    total = len(heads) * cfg.epochs
    histories = {}
    for k_index, (kind, head) in enumerate(heads.items()):
        seed_everything(cfg.seed)
        head.bottleneck.requires_grad_(not cfg.freeze_bottleneck)
        history: list[dict] = []
        _fit_head(head, x, y, cfg, cfg.epochs, callbacks,
                  _recorder(head, kind, history, val, callbacks, k_index * cfg.epochs, total))
        histories[kind] = history
    return histories


@torch.no_grad()
def predict_proba(head: Head, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities of ``head`` for a feature matrix."""
    head.eval()
    x = torch.as_tensor(features, dtype=torch.float32)
    out = [torch.softmax(head(x[i:i + batch_size]), dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.classifier.out_features), np.float32)


def _head_val_metrics(head: Head, val: tuple[np.ndarray, np.ndarray]) -> dict:
    from .metrics import macro_f1

    proba = predict_proba(head, val[0])
    pred = proba.argmax(1)
    y = np.asarray(val[1])
    return {"val_accuracy": float((pred == y).mean()),
            "val_macro_f1": macro_f1(y, pred, proba.shape[1])}
