"""The torch engine: the same operations on a torch device (CPU, CUDA or MPS), imported lazily."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from attncli.engines.memory import host_available_bytes
from attncli.errors import ConfigError

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def resolve_device(spec: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU), or a device checked to exist."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(
            f"--device {spec!r}: not a device (use auto, cpu, cuda, cuda:N or mps)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + (
                "" if torch.version.cuda else ", built without CUDA"
            )
            raise ConfigError(f"--device {spec}: CUDA is not available ({build}; no GPU found)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"--device {spec}: only {count} CUDA device(s) found (cuda:0…cuda:{count - 1})"
            )
    elif device.type == "mps" and not _mps_available():
        raise ConfigError(f"--device {spec}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {spec!r}: unsupported device type {device.type!r}")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def _visible(
    rows: range, keys: range, window: int | None, device: torch.device
) -> torch.Tensor:  # fmt: skip
    """(rows, keys) True where query i sees key j: j ≤ i, and i − j < window when there is one."""
    diff = (
        torch.arange(rows.start, rows.stop, device=device)[:, None]
        - torch.arange(keys.start, keys.stop, device=device)[None, :]
    )
    return (diff >= 0) & (diff < window) if window is not None else diff >= 0


class TorchEngine:
    name = "torch"

    def __init__(self, device: str = "auto") -> None:
        self._device = resolve_device(device)
        self.device = str(self._device)

    def check_dtype(self, dtype: str) -> None:
        if dtype == "float64" and self._device.type == "mps":
            raise ConfigError("--dtype float64 is not supported on mps; use float32 or float16")

    def available_bytes(self) -> int:
        if self._device.type == "cuda":
            return int(torch.cuda.mem_get_info(self._device)[0])
        return host_available_bytes()

    def asarray(self, a: np.ndarray, dtype: str) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a)).to(device=self._device, dtype=_DTYPES[dtype])

    def to_numpy(self, a: torch.Tensor) -> np.ndarray:
        """float32/float64 as they are; half types widen to float32 (numpy has no bfloat16)."""
        if a.dtype in (torch.float16, torch.bfloat16):
            a = a.float()
        return a.detach().cpu().numpy()

    def affine(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        y = x @ weight
        return y if bias is None else y + bias

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        n, d = x.shape
        return x.view(n, heads, d // heads).transpose(0, 1)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        heads, n, d = x.shape
        return x.transpose(0, 1).reshape(n, heads * d)

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return q @ k.transpose(-2, -1)

    def scale(self, s: torch.Tensor, factor: float) -> torch.Tensor:
        return s * factor

    def softcap(self, s: torch.Tensor, cap: float) -> torch.Tensor:
        return torch.tanh(s / cap) * cap

    def repeat_heads(self, x: torch.Tensor, group: int) -> torch.Tensor:
        return x.repeat_interleave(group, dim=0)

    def rms_norm(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        """In float32 at least, as Qwen3's RMSNorm, then back to the input's dtype."""
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)

    def rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def causal_mask(self, s: torch.Tensor, window: int | None = None) -> torch.Tensor:
        n = s.shape[-1]
        return s.masked_fill(~_visible(range(n), range(n), window, s.device), float("-inf"))

    def softmax(self, s: torch.Tensor) -> torch.Tensor:
        return torch.softmax(s, dim=-1)

    def dropout(self, w: torch.Tensor, p: float, seed: int) -> torch.Tensor:
        if p >= 1.0:
            return torch.zeros_like(w)
        gen = torch.Generator(device=w.device).manual_seed(seed & 0xFFFFFFFFFFFFFFF)
        keep = torch.rand(w.shape, generator=gen, device=w.device) >= p
        return torch.where(keep, w / (1.0 - p), torch.zeros_like(w))

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    def context_scope(self) -> AbstractContextManager[None]:
        return nullcontext()

    def context(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool,
        progress: object = None, window: int | None = None, softcap: float | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """torch's fused attention on 4-D (batch, heads, tokens, dim) tensors: its fastest path.
        Fewer key/value heads than query heads go in as they are (``enable_gqa``); a window is
        a boolean mask of the keys each query sees. Soft-capping, which the fused kernel
        cannot do, goes through :func:`_capped_context`."""
        if softcap is not None:
            return _capped_context(q, k, v, scale, causal, progress, window, softcap)
        four = (lambda t: t[None, None]) if q.ndim == 2 else (lambda t: t[None])
        n = q.shape[-2]
        mask = None if window is None else _visible(range(n), range(n), window, q.device)
        z = torch.nn.functional.scaled_dot_product_attention(
            four(q), four(k), four(v), attn_mask=mask, is_causal=causal and mask is None,
            scale=scale, enable_gqa=k.shape[0] != q.shape[0] and q.ndim == 3,
        )  # fmt: skip
        if progress is not None:  # query rows of every head, as the blockwise path counts
            progress(n * (q.shape[0] if q.ndim == 3 else 1))
        return z[0, 0] if q.ndim == 2 else z[0]


# Score tile of the soft-capped context path, all heads of a block of query rows together.
CAPPED_TILE_BYTES = 64 << 20


def _capped_context(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool,
    progress: object, window: int | None, softcap: float,
) -> torch.Tensor:  # fmt: skip
    """softmax(tanh(scale·q·kᵀ / C)·C, masked) · v, a block of query rows at a time, so that
    only one (heads, rows, m) tile of scores exists at once. Query heads are viewed as
    (kv_heads, group, …) so each key/value head serves its group without being copied."""
    q3, k3, v3 = (t if q.ndim == 3 else t[None] for t in (q, k, v))
    heads, n, d = q3.shape
    kv, m = k3.shape[:2]
    qg = q3.reshape(kv, heads // kv, n, d)
    rows = max(1, CAPPED_TILE_BYTES // (q3.element_size() * heads * max(m, 1)))
    out = torch.empty((kv, heads // kv, n, v3.shape[-1]), dtype=q3.dtype, device=q3.device)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        # causal rows see no later key, and a window no key W or more back: visit only those
        k0 = 0 if not causal or window is None else max(0, r0 - window + 1)
        k1 = min(m, r1) if causal else m
        kb, vb = k3[:, k0:k1], v3[:, k0:k1]
        s = (qg[:, :, r0:r1] @ kb.transpose(-2, -1)[:, None]) * scale  # (kv, group, rows, keys)
        s = torch.tanh(s / softcap) * softcap
        if causal:
            seen = _visible(range(r0, r1), range(k0, k1), window, q3.device)
            s = s.masked_fill(~seen, float("-inf"))
        out[:, :, r0:r1] = torch.softmax(s, dim=-1) @ vb[:, None]
        if progress is not None:
            progress((r1 - r0) * heads)
    out = out.reshape(heads, n, -1)
    return out if q.ndim == 3 else out[0]
