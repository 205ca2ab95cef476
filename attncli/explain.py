"""A step-by-step trace of one query: formulas, reasons, and the arithmetic on the user's numbers.

:func:`build_trace` reads an :class:`AttentionResult`; every result it shows is a value of the
result's steps, only the written-out terms (products, exponentials) are derived for display.
Renderers (terminal panels, Markdown, JSON) format the :class:`Trace`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from attncli.core.kvcache import CacheRun
from attncli.core.params import Projection
from attncli.core.result import AttentionResult
from attncli.core.stats import row_stats
from attncli.elide import elide
from attncli.visible import label

MAX_TERMS = 8  # a longer sum is written: first 3 + … + last 2
TOKEN_MAX = 40  # tokens in the prose are cut to this (a megabyte token stays one short label)
MAX_KEYS = 12  # with more keys, per-key lines are written for the first 8 and last 3
TOP_K = 3
EXP_LIMIT_F32 = math.log(float(np.finfo(np.float32).max))  # ≈ 88.72: exp of more is inf


@dataclass(frozen=True)
class Vector:
    """A labelled row: the result of a step (masked entries are -inf)."""

    name: str
    labels: tuple[str, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Section:
    """One step: its formula (unicode and LaTeX), why it exists, the arithmetic lines, the
    resulting labelled vector(s), and for tools the structured ``terms``."""

    key: str
    title: str
    formula: str
    latex: str
    why: str
    lines: tuple[str, ...] = ()
    results: tuple[Vector, ...] = ()
    head: int | None = None
    terms: tuple[dict, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Trace:
    query: int
    token: str
    params: dict[str, object]
    tokens: tuple[str, ...]
    sections: tuple[Section, ...]

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``--format json`` (-inf becomes None)."""
        doc = asdict(self)
        for section in doc["sections"]:
            for vec in section["results"]:
                vec["values"] = [None if v == -math.inf else v for v in vec["values"]]
        return doc


def build_trace(
    result: AttentionResult, query: int, precision: int = 4, cache: CacheRun | None = None
) -> Trace:
    """The trace of row ``query`` of a full (not query-narrowed) ``result``; with ``cache`` (a
    token-by-token KV-cache run of it) a section on what the cache holds at that token."""
    tracer = _Tracer(result, query, precision)
    sections = tracer.sections()
    if cache is not None:
        sections.insert(len(sections) - 1, tracer.kv_cache(cache))
    return Trace(query, result.tokens[query], result.params(), result.tokens, tuple(sections))


class _Tracer:
    """Builds the sections for query row ``i``; formatting helpers share the precision."""

    def __init__(self, result: AttentionResult, i: int, precision: int) -> None:
        self.r, self.i, self.p = result, i, precision
        self.c = result.config
        self.spec = result.config.spec()
        # tokens as the prose shows them (visible, shortened); vectors keep the exact labels
        self.tok = tuple(label(t, TOKEN_MAX) for t in result.tokens)
        self.keys = tuple(label(t, TOKEN_MAX) for t in result.keys_tokens)  # memory's, if cross
        self.me = self.tok[i]

    # ---- formatting ----------------------------------------------------------------------------

    def num(self, v: float) -> str:
        """At most ``precision`` decimals, trailing zeros dropped (0.55, not 0.5500)."""
        if math.isinf(v):
            return "-∞" if v < 0 else "∞"
        s = f"{v:.{self.p}f}"
        s = s.rstrip("0").rstrip(".") if "." in s else s
        return "0" if s in ("-0", "") else s

    def factor(self, v: float) -> str:
        s = self.num(v)
        return f"({s})" if s.startswith("-") else s

    def dot(self, a: np.ndarray, b: np.ndarray, total: float, bias: float | None = None) -> str:
        """``a1×b1 + a2×b2 + … (+ bias) = total``: every product, or the ends of a long sum."""
        idx = elide(len(a), MAX_TERMS, 3, 2)
        terms = ["…" if k is None else f"{self.factor(a[k])}×{self.factor(b[k])}" for k in idx]
        if terms[0].startswith("("):  # the leading factor needs no parentheses
            terms[0] = terms[0][1:].replace(")×", "×", 1)
        if bias is not None:
            terms.append(self.factor(bias))
        count = f" ({len(a)} terms)" if len(a) > MAX_TERMS else ""
        return " + ".join(terms) + f"{count} = {self.num(total)}"

    def row_text(self, values: np.ndarray) -> str:
        idx = elide(len(values), MAX_TERMS, 5, 2)
        return "[" + ", ".join("…" if k is None else self.num(values[k]) for k in idx) + "]"

    def per_key(self, line) -> list[str]:
        """``line(j)`` for each key j worth writing, an ellipsis line for the elided middle."""
        n = len(self.keys)
        idx = elide(n, MAX_KEYS, 8, 3)
        return [f"… ({n - 11} more keys) …" if j is None else line(j) for j in idx]

    def vec(self, name: str, values: np.ndarray, labels: tuple[str, ...] | None = None) -> Vector:
        labels = labels if labels is not None else tuple(f"d{j}" for j in range(len(values)))
        return Vector(name, labels, tuple(float(v) for v in values))

    # ---- sections ------------------------------------------------------------------------------

    def sections(self) -> list[Section]:
        steps, spec = self.r.steps, self.spec
        out = [self.inputs()]
        # the queries and keys the scores are made of: after QK-norm and RoPE when asked for
        q = steps.get("queries_rope", steps.get("queries_norm", steps["queries"]))
        k = steps.get("keys_rope", steps.get("keys_norm", steps["keys"]))
        if "latent" in steps:
            out.append(self.latent())
        if spec.split:
            out.append(self.heads())
        if spec.qk_norm:
            out.append(self.qk_norm())
        if spec.rope_base is not None:
            out.append(self.rope())
        if not spec.split:
            out += self.attention(q, k, steps["values"], None)
        else:
            hd = spec.head_dim
            for h in range(spec.heads):
                g = h // spec.group  # the key/value head this query head shares
                qc, kc = slice(h * hd, (h + 1) * hd), slice(g * hd, (g + 1) * hd)
                out += self.attention(q[:, qc], k[:, kc], steps["values"][:, kc], h)
            out += self.output_projection()
        out.append(self.summary())
        return out

    def inputs(self) -> Section:
        x = self.r.steps["inputs"]
        if self.r.parameters is None:
            return Section(
                "inputs",
                "Inputs",
                "q = k = v = x",
                r"q_i = k_i = v_i = x_i",
                "Simple attention has no weights: each token's embedding is its own query (what it "
                "looks for), key (what it offers) and value (what it passes on).",
                results=(self.vec(f"x({self.me})", x[self.i]),),
            )
        lines = [f"x({self.me}) = {self.row_text(x[self.i])}"]
        results = [self.vec(f"x({self.me})", x[self.i])]
        params, latent = self.r.parameters, self.r.steps.get("latent")
        if latent is not None and not self.c.cross:
            bias = " + b" if params.latent.bias is not None else ""
            lines.append(
                f"c({self.me}) = x({self.me})·W_DKV{bias}  (the latent, {len(latent[0])} wide):"
            )
            lines += self.projection("c", x[self.i], params.latent, latent[self.i])
            results.append(self.vec(f"c({self.me})", latent[self.i]))
        src, src_name = (x, "x") if latent is None else (latent, "c")
        for role, step in (("query", "queries"), ("key", "keys"), ("value", "values")):
            if role != "query" and self.c.cross:
                continue  # keys and values belong to the memory's tokens, listed below
            letter, proj = role[0], getattr(params, role)
            row = self.r.steps[step][self.i]
            bias = " + b" if proj.bias is not None else ""
            inp, name = (x, "x") if role == "query" else (src, src_name)
            w_name = {"key": "W_UK", "value": "W_UV"}.get(role) if latent is not None else None
            lines.append(f"{letter}({self.me}) = {name}({self.me})·{w_name or 'W_' + role}{bias}:")
            lines += self.projection(letter, inp[self.i], proj, row)
            results.append(self.vec(f"{letter}({self.me})", row))
        source = "m_j" if self.c.cross else f"{src_name}_j"
        for role in ("key", "value"):
            rows = self.r.steps[f"{role}s"]
            w_name = {"key": "W_UK", "value": "W_UV"}[role] if latent is not None else f"W_{role}"
            lines.append(f"every token's {role} ({role[0]}_j = {source}·{w_name}):")
            lines += self.per_key(
                lambda j, rows=rows, role=role: (
                    f"  {role[0]}({self.keys[j]}) = {self.row_text(rows[j])}"
                )
            )
        return Section(
            "inputs",
            "Inputs and projections",
            "q = x·W_q,  k_j = x_j·W_k,  v_j = x_j·W_v",
            r"q = x W_q,\quad k_j = x_j W_k,\quad v_j = x_j W_v",
            "Three learned matrices give every token three roles: a query (what it looks for), a "
            "key (what it offers to be found by) and a value (what it passes on when attended to).",
            tuple(lines),
            tuple(results),
        )

    def projection(
        self, letter: str, x: np.ndarray, proj: Projection, out: np.ndarray
    ) -> list[str]:
        """One line per output component: ``letter[c] = Σ_i x_i·W[i, c] (+ b_c) = out[c]``."""
        lines = []
        for c in elide(len(out), MAX_TERMS, 3, 2):
            if c is None:
                lines.append(f"  … ({len(out) - 5} more components) …")
                continue
            bias = None if proj.bias is None else float(proj.bias[c])
            lines.append(
                f"  {letter}[{c}] = " + self.dot(x, proj.weight[:, c], float(out[c]), bias)
            )
        return lines

    def head_rows(self, step: str, row: int) -> list[tuple[int, np.ndarray]]:
        """(head, that head's slice of ``row`` of ``step``): heads of queries, or of keys."""
        a = self.r.steps[step][row]
        hd = self.spec.head_dim
        return [(h, a[h * hd : (h + 1) * hd]) for h in range(len(a) // hd)]

    def latent(self) -> Section:
        spec, c = self.spec, self.r.steps["latent"]
        d_kv = 2 * self.c.d_out
        lines = [
            f"c_j = x_j·W_DKV is {spec.latent_dim} numbers per token; k_j = c_j·W_UK and "
            f"v_j = c_j·W_UV are {self.c.d_out} each",
            f"the KV cache keeps c: {spec.latent_dim} numbers per token instead of the "
            f"{d_kv} of keys and values ({self.num(d_kv / spec.latent_dim)}× less)",
        ]
        row = self.i if not self.c.cross else 0
        label = self.keys[row]
        return Section(
            "latent",
            "Latent keys and values (multi-head latent attention)",
            "c = x·W_DKV,  k = c·W_UK,  v = c·W_UV",
            r"c_j = x_j W_{DKV},\quad k_j = c_j W_{UK},\quad v_j = c_j W_{UV}",
            "Keys and values are rebuilt from one small latent vector per token, so generation "
            "caches that vector instead of every head's keys and values (DeepSeek-V2/V3): the "
            "memory of long contexts shrinks, the attention itself is unchanged in form.",
            tuple(lines),
            (self.vec(f"c({label})", c[row]),),
        )

    def head_label(self, h: int, letter: str) -> str:
        """ "head h: " for head h of a multi-head result; for one head of a model, the model's
        own numbering (its query head, or the key/value head it reads); else nothing."""
        if self.spec.heads > 1:
            return f"head {h}: "
        info = self.r.model_info or {}
        if letter == "k" and "kv_head" in info:
            return f"key/value head {info['kv_head']}: "
        return f"head {info['head']}: " if "head" in info else ""

    def qk_norm(self) -> Section:
        lines, results = [], []
        pairs = [("q", "queries", self.i)]
        if not self.c.cross:
            pairs.append(("k", "keys", self.i))
        params = self.r.parameters
        whole = self.spec.qk_norm_scope == "all"
        for letter, step, row in pairs:
            after = dict(self.head_rows(f"{step}_norm", row))
            if whole:
                lines.append(self.row_rms(letter, step, row))
            for h, before in self.head_rows(step, row):
                rms_b = float(np.sqrt(np.mean(np.square(before, dtype=np.float64))))
                rms_a = float(np.sqrt(np.mean(np.square(after[h], dtype=np.float64))))
                lines.append(
                    f"{self.head_label(h, letter)}RMS({letter}({self.me})) = {self.num(rms_b)} "
                    f"→ {self.num(rms_a)}"
                )
            results.append(
                self.vec(f"{letter}({self.me}) normed", self.r.steps[f"{step}_norm"][row])
            )
        learned = params is not None and params.q_norm is not None
        scope = "over each token's whole row, all heads together" if whole else "per head"
        why = (
            "Scaling every head's query and key to unit RMS bounds the scores, so no head's "
            "softmax collapses onto one token as weights grow in training (Qwen3, Gemma 3)."
            if not whole
            else "Scaling each token's whole query and key (every head's numbers at once, "
            "before splitting into heads) to unit RMS bounds the scores and steadies training "
            "(OLMo 2); one head's slice need not have RMS 1 on its own."
        )
        return Section(
            "qk_norm",
            "QK-norm" + (" (whole row)" if whole else ""),
            f"q̂ = q / √(mean(q²) + ε){' · w_q' if learned else ''}, likewise k"
            f"{' (· w_k)' if learned else ''}; ε = {self.c.rms_eps:g}, {scope}"
            + ("; w_q, w_k: the model's learned norm weights" if learned else ""),
            r"\hat q = \frac{q}{\sqrt{\tfrac{1}{d}\sum_c q_c^2 + \epsilon}}",
            why,
            tuple(lines),
            tuple(results),
        )

    def row_rms(self, letter: str, step: str, row: int) -> str:
        """The divisor of a whole-row QK-norm, r = ‖q·w‖ / ‖q̂‖ (w: the learned weights, or 1),
        read from the steps: it is the RMS of the whole row even when this result holds only one
        head's slice of it (a model's per-head view)."""
        before = self.r.steps[step][row].astype(np.float64)
        after = self.r.steps[f"{step}_norm"][row].astype(np.float64)
        p = self.r.parameters
        w = None if p is None else (p.q_norm if letter == "q" else p.k_norm)
        scaled = before if w is None else before * w
        norm = float(np.linalg.norm(after))
        r = float(np.linalg.norm(scaled)) / norm if norm else float("nan")
        return (
            f"{letter}({self.me}) is divided by √(mean({letter}²) + ε) of its whole row "
            f"= {self.num(r)}"
        )

    def rope(self) -> Section:
        spec, p = self.spec, self.i
        d, base = spec.head_dim, spec.rope_base
        assert base is not None
        lines = [f"{self.me} is at position {p}; pair t rotates dimensions t and t+{d // 2}:"]
        for t in elide(d // 2, MAX_TERMS, 3, 2):
            if t is None:
                lines.append("  …")
                continue
            if self.c.rope_freqs is not None:  # a model's scaled frequencies (Llama 3)
                theta = self.c.rope_freqs[t]
                formula = f"θ = {base:g}^(−{2 * t}/{d}), scaled, = {self.num(theta)}"
            else:
                theta = base ** (-2 * t / d)
                formula = f"θ = {base:g}^(−{2 * t}/{d}) = {self.num(theta)}"
            lines.append(f"  pair {t}: {formula}, angle = {p}·θ = {self.num(p * theta)} rad")
        before_q = self.r.steps.get("queries_norm", self.r.steps["queries"])[self.i, :d]
        before_k = self.r.steps.get("keys_norm", self.r.steps["keys"])[:, :d]
        before = before_k @ before_q
        after = (
            self.r.steps["scores"][self.i]
            if self.r.steps["scores"].ndim == 2
            else (self.r.steps["scores"][0, self.i])
        )
        head = " (head 0)" if spec.split else ""
        lines.append(f"scores{head} before → after rotation (the scores step):")
        lines += self.per_key(
            lambda j: (
                f"  ω({self.me}, {self.keys[j]}): {self.num(before[j])} → {self.num(after[j])}"
            )
        )
        return Section(
            "rope",
            "Rotary position embedding (RoPE)",
            "q' = q·cos(pθ) + rotate_half(q)·sin(pθ), likewise k at its own position",
            r"q'_p = q_p \cos(p\theta) + \mathrm{rot}(q_p) \sin(p\theta),\ "
            r"\theta_t = b^{-2t/d}",
            "Attention by itself ignores order. Rotating each pair of dimensions by an angle "
            "proportional to the position makes q'·k' depend on the distance between the tokens, "
            "not on where they sit (Llama, Qwen, Gemma, Mistral): relative positions for free.",
            tuple(lines),
            (
                self.vec(f"q({self.me}) rotated", self.r.steps["queries_rope"][self.i]),
                self.vec(f"ω before rotation{head}", before, self.r.keys_tokens),
                self.vec(f"ω after rotation{head}", after, self.r.keys_tokens),
            ),
        )

    def heads(self) -> Section:
        hd, n, spec = self.c.head_dim, self.c.heads, self.spec
        if spec.group == 1 and spec.kv_heads == n:
            lines = [
                f"head {h}: columns {h * hd}–{(h + 1) * hd - 1} of Q, K and V" for h in range(n)
            ]
            return Section(
                "heads",
                "Splitting into heads",
                f"Q = [{' | '.join(f'Q_{h}' for h in range(n))}], likewise K and V; d_k = {hd}",
                r"Q = [Q_0 \mid \dots \mid Q_{h-1}],\quad d_k = d_\text{out} / h",
                "Each head attends with its own slice of the projections, so different heads can "
                "learn to look for different relations (names in one head, places in another).",
                tuple(lines),
            )
        g = spec.group
        lines = [
            f"key/value head {kv} (columns {kv * hd}–{(kv + 1) * hd - 1} of K and V) serves query "
            f"heads {', '.join(str(h) for h in range(kv * g, (kv + 1) * g))}"
            for kv in range(spec.kv_heads)
        ]
        kind = "multi-query" if spec.kv_heads == 1 else "grouped-query"
        lines.append(
            f"{n} query heads, {spec.kv_heads} key/value head(s): the KV cache keeps "
            f"{spec.kv_heads}/{n} of multi-head attention's keys and values"
        )
        return Section(
            "heads",
            f"Splitting into heads ({kind} attention)",
            f"head h uses Q_h, K_⌊h/{g}⌋, V_⌊h/{g}⌋; d_k = {hd}",
            r"\text{head}_h = \text{Attn}(Q_h, K_{\lfloor h/g \rfloor}, V_{\lfloor h/g \rfloor})",
            "Generation keeps every earlier token's keys and values (the KV cache), and its size "
            "is what limits context length and batch size. Sharing one key/value head among "
            f"{g} consecutive query heads divides that memory by {g} while each query head still "
            "asks its own question (Llama 3, Qwen3, Gemma 3 use it; one shared head is MQA).",
            tuple(lines),
        )

    def attention(
        self, q: np.ndarray, k: np.ndarray, v: np.ndarray, h: int | None
    ) -> list[Section]:
        """Scores, scaling, mask, softmax, dropout and context for one head (or the only one)."""

        def row(name: str) -> np.ndarray:
            a = self.r.steps[name]
            return (a if h is None else a[h])[self.i]

        pre = "" if h is None else f"Head {h}: "
        scores = row("scores")
        out = [self.scores(q[self.i], k, scores, pre, h)]
        current, symbol = scores, "ω"
        if self.c.scale:
            all_scores = self.r.steps["scores"] if h is None else self.r.steps["scores"][h]
            out.append(self.scaling(scores, row("scaled_scores"), all_scores, pre, h))
            current, symbol = row("scaled_scores"), "ω'"
        if self.c.softcap is not None:
            before = self.r.steps["scaled_scores" if self.c.scale else "scores"]
            all_before = before if h is None else before[h]
            out.append(self.capping(current, row("capped_scores"), all_before, symbol, pre, h))
            current, symbol = row("capped_scores"), symbol + "'"
        if self.c.causal:
            out.append(self.mask(row("masked_scores"), symbol, pre, h))
            current = row("masked_scores")
        dropped = self.c.dropout > 0
        before = row("weights_before_dropout") if dropped else row("weights")
        out.append(self.softmax(current, before, symbol, pre, h))
        if dropped:
            out.append(self.dropout(before, row("weights"), pre, h))
        out.append(self.context(row("weights"), v, pre, h))
        return out

    def scores(
        self, q: np.ndarray, k: np.ndarray, s: np.ndarray, pre: str, h: int | None
    ) -> Section:
        terms = tuple(
            {
                "key": self.r.keys_tokens[j],
                "q": q.tolist(),
                "k": k[j].tolist(),
                "value": float(s[j]),
            }
            for j in range(len(self.keys))
        )
        lines = self.per_key(lambda j: f"ω({self.me}, {self.keys[j]}) = " + self.dot(q, k[j], s[j]))
        return Section(
            "scores",
            pre + "Attention scores",
            "ω(q, k_j) = q·k_j",
            r"\omega_{ij} = q_i \cdot k_j",
            "The dot product measures how well the query and each key point the same way: the "
            "larger it is, the more relevant that token is to this one.",
            tuple(lines),
            (self.vec("ω", s, self.r.keys_tokens),),
            h,
            terms,
        )

    def scaling(
        self, s: np.ndarray, scaled: np.ndarray, all_scores: np.ndarray, pre: str, h: int | None
    ) -> Section:
        d_k, own = self.c.head_dim, self.c.scale_dim
        f = 1 / math.sqrt(self.c.scale_by)
        lines = [
            f"d_k = {d_k},  1/√d_k = {self.num(f)}"
            if own is None
            else f"the model scales by 1/√{own:g} (its own constant, not d_k = {d_k}) = "
            f"{self.num(f)}",
            *self.per_key(lambda j: f"{self.num(s[j])} × {self.num(f)} = {self.num(scaled[j])}"),
            f"spread of all this input's scores (standard deviation): "
            f"{self.num(all_scores.std())} before, {self.num(all_scores.std() * f)} after",
            f"range of this row: {self.num(np.ptp(s))} before, {self.num(np.ptp(scaled))} after",
        ]
        return Section(
            "scaled_scores",
            pre + "Scaling",
            "ω'(q, k_j) = ω(q, k_j) / √d_k"
            if own is None
            else f"ω'(q, k_j) = ω(q, k_j) / √{own:g}",
            r"\omega'_{ij} = \omega_{ij} / \sqrt{d_k}"
            if own is None
            else rf"\omega'_{{ij}} = \omega_{{ij}} / \sqrt{{{own:g}}}",
            "A dot product of d_k terms has a variance that grows with d_k; large scores push "
            "softmax towards one-hot (all weight on one key, tiny gradients). Dividing by √d_k "
            "keeps the spread steady whatever the dimension.",
            tuple(lines),
            (self.vec("ω'", scaled, self.r.keys_tokens),),
            h,
        )

    def capping(
        self, s: np.ndarray, capped: np.ndarray, all_before: np.ndarray, sym: str, pre: str,
        h: int | None,
    ) -> Section:  # fmt: skip
        cap = self.c.softcap
        assert cap is not None
        new = sym + "'"
        all_after = self.r.steps["capped_scores"] if h is None else self.r.steps["capped_scores"][h]
        big = np.abs(all_before).max()
        lines = [
            f"C = {cap:g}: tanh(x/C)·C ≈ x while |x| ≪ C, and is at most C in size",
            *self.per_key(
                lambda j: (
                    f"{self.keys[j]}: tanh({self.num(s[j])} / {cap:g}) × {cap:g} = "
                    f"{self.num(capped[j])}"
                )
            ),
            f"largest |{sym}| of this row: {self.num(np.abs(s).max())}; "
            f"largest |{new}|: {self.num(np.abs(capped).max())}",
            f"largest |{sym}| of all this input's scores{'' if h is None else f' (head {h})'}: "
            f"{self.num(big)} ({self.num(big / cap)}·C); largest |{new}|: "
            f"{self.num(np.abs(all_after).max())}",
        ]
        return Section(
            "capped_scores",
            pre + "Soft-capping",
            f"{new}(q, k_j) = tanh({sym}(q, k_j) / C) · C,  C = {cap:g}",
            rf"{_tex(new)}_{{ij}} = C \tanh({_tex(sym)}_{{ij}} / C)",
            "The scores are squashed smoothly to at most C in size before the mask: small ones "
            "pass almost unchanged, large ones level off near ±C. Gemma 2 does this so that no "
            "logit can grow without bound in training, which keeps training stable and the "
            "softmax from collapsing onto one key.",
            tuple(lines),
            (self.vec(new, capped, self.r.keys_tokens),),
            h,
        )

    def mask(self, masked: np.ndarray, symbol: str, pre: str, h: int | None) -> Section:
        if self.c.window is not None:
            return self.window_mask(masked, symbol, pre, h)
        hidden = self.tok[self.i + 1 :]
        shown = ", ".join(hidden[:MAX_KEYS]) + (", …" if len(hidden) > MAX_KEYS else "")
        lines = [
            f"{self.me} is token {self.i}: it may look at tokens 0–{self.i}",
            f"hidden (set to -∞): {shown}" if hidden else "nothing hidden: it is the last token",
        ]
        return Section(
            "masked_scores",
            pre + "Causal mask",
            f"{symbol}(q_i, k_j) = -∞ for j > i",
            rf"{_tex(symbol)}_{{ij}} = -\infty \quad \text{{for }} j > i",
            "A model that predicts the next token must not peek at the future: scores of later "
            "tokens become -∞, so softmax gives them exactly zero weight.",
            tuple(lines),
            (self.vec(f"masked {symbol}", masked, self.r.tokens),),
            h,
        )

    def window_mask(self, masked: np.ndarray, symbol: str, pre: str, h: int | None) -> Section:
        w, i = self.c.window, self.i
        first = max(0, i - w + 1)
        before = self.tok[:first]
        shown = ", ".join(before[:MAX_KEYS]) + (", …" if len(before) > MAX_KEYS else "")
        band = "".join("■" if first <= j <= i else "·" for j in range(min(len(self.tok), 80)))
        lines = [
            f"{self.me} is token {i}: with window W = {w} it may look at tokens {first}–{i}",
            f"hidden as too far back (i − j ≥ {w}): {shown}" if before else "nothing too far back",
            f"hidden as future (j > i): {len(self.tok) - i - 1} token(s)",
            f"row {i} of the band (■ seen, · hidden): {band}",
        ]
        return Section(
            "masked_scores",
            pre + "Sliding-window causal mask",
            f"{symbol}(q_i, k_j) = -∞ for j > i or i − j ≥ W",
            rf"{_tex(symbol)}_{{ij}} = -\infty \quad \text{{for }} j > i \text{{ or }} i - j \ge W",
            "Each token attends only to itself and the W−1 tokens before it: the mask is a band "
            "along the diagonal. Work and the KV cache grow with n·W instead of n², which is "
            "what lets long contexts fit (Mistral, Gemma 3); stacked layers still pass "
            "information further back than W.",
            tuple(lines),
            (self.vec(f"masked {symbol}", masked, self.r.keys_tokens),),
            h,
        )

    def softmax(self, s: np.ndarray, w: np.ndarray, sym: str, pre: str, h: int | None) -> Section:
        seen = np.isfinite(s)
        m = float(s[seen].max())
        exps = np.where(seen, np.exp(np.where(seen, s - m, 0.0)), 0.0)
        total = float(exps.sum())

        def exp_line(j: int) -> str:
            if not seen[j]:
                return f"exp(-∞) = 0  ({self.keys[j]} is masked)"
            return f"exp({self.num(s[j])} − {self.factor(m)}) = {self.num(exps[j])}"

        def ratio_line(j: int) -> str:
            if not seen[j]:
                return f"α({self.me}, {self.keys[j]}) = 0  (masked)"
            ratio = f"{self.num(exps[j])} / {self.num(total)}"
            return f"α({self.me}, {self.keys[j]}) = {ratio} = {self.num(w[j])}"

        lines = [
            f"m = max_j {sym}_j = {self.num(m)}  (subtracted first; the weights do not change)",
            *self.per_key(exp_line),
            f"Σ = {self.num(total)}",
            *self.per_key(ratio_line),
            self.naive(s[seen], sym),
            self.overflow(s[seen], m),
        ]
        return Section(
            "weights",
            pre + "Softmax",
            f"α_j = exp({sym}_j − m) / Σ_k exp({sym}_k − m)",
            rf"\alpha_{{ij}} = \frac{{\exp({_tex(sym)}_{{ij}} - m)}}"
            rf"{{\sum_k \exp({_tex(sym)}_{{ik}} - m)}}",
            "Softmax turns scores into weights that are positive and sum to 1, read as 'how much "
            "attention'. Dividing by the plain sum (the seeds' first try) breaks on negative or "
            "zero-sum scores; subtracting the max m keeps exp from overflowing.",
            tuple(lines),
            (self.vec("α", w, self.r.keys_tokens),),
            h,
        )

    def naive(self, s: np.ndarray, sym: str) -> str:
        """The seeds' first normalisation, ω_j / Σ ω, and why softmax replaces it."""
        total = float(s.sum())
        if total == 0:
            return f"naive {sym}_j / Σ {sym}: undefined here, the scores sum to 0"
        naive = s / total
        if (naive < 0).any() or (naive > 1).any():
            verdict = "negative or above 1 here: not a distribution"
        else:
            verdict = "fine here, but a single negative score would break it"
        return f"naive {sym}_j / Σ {sym} = {self.row_text(naive)}  ({verdict})"

    def overflow(self, s: np.ndarray, m: float) -> str:
        """Shift the row so its max is 100 and show float32 exp overflowing without the trick."""
        shift = 100.0 - m
        big = ((s - m) + 100.0).astype(np.float32)  # s + shift, without losing the 100 to rounding
        with np.errstate(over="ignore", invalid="ignore"):
            exps = np.exp(big)
            broken = exps / exps.sum()
        result = "NaN" if np.isnan(broken).any() else self.row_text(broken)
        return (
            f"overflow: softmax ignores a common shift, so add {self.num(shift)} to every score; "
            f"the largest becomes 100 > {self.num(EXP_LIMIT_F32)} and in float32 exp(100) = "
            f"{self.num(float(exps.max()))}, giving ∞/∞ = {result}. Subtracting the max first "
            "gives exp(0) = 1 and exactly the weights above."
        )

    def dropout(self, before: np.ndarray, after: np.ndarray, pre: str, h: int | None) -> Section:
        p = self.c.dropout
        dropped = [self.keys[j] for j in range(len(self.keys)) if after[j] == 0 and before[j] != 0]
        scale = self.num(1 / (1 - p)) if p < 1 else "∞ (every weight dropped)"
        lines = [
            f"p = {p}: each weight is kept with probability 1 − p and then multiplied by {scale}",
            "dropped here: " + (", ".join(dropped) if dropped else "none"),
        ]
        return Section(
            "dropout",
            pre + "Dropout",
            "α̃_j = α_j·m_j / (1 − p),  m_j ~ Bernoulli(1 − p)",
            r"\tilde\alpha_{ij} = \alpha_{ij}\, m_{ij} / (1-p)",
            "In training, randomly dropping attention weights keeps the model from relying on a "
            "few tokens; rescaling the rest keeps the expected total unchanged.",
            tuple(lines),
            (self.vec("α after dropout", after, self.r.keys_tokens),),
            h,
        )

    def context(self, w: np.ndarray, v: np.ndarray, pre: str, h: int | None) -> Section:
        if h is None:
            z = self.r.steps["context"][self.i]
        else:
            hd = self.c.head_dim
            z = self.r.steps["head_context"][self.i, h * hd : (h + 1) * hd]
        lines = []
        for c in elide(len(z), MAX_TERMS, 3, 2):
            if c is None:
                lines.append(f"… ({len(z) - 5} more components) …")
            else:
                lines.append(f"z[{c}] = " + self.dot(w, v[:, c], z[c]))
        name = f"z({self.me})" if h is None else f"z_{h}({self.me})"
        return Section(
            "context",
            pre + "Context vector",
            "z = Σ_j α_j·v_j",
            r"z_i = \sum_j \alpha_{ij} v_j",
            "The new, contextual embedding of this token is the average of all value vectors, "
            "weighted by attention: tokens it attends to more contribute more.",
            tuple(lines),
            (self.vec(name, z),),
            h,
        )

    def output_projection(self) -> list[Section]:
        concat = self.r.steps["head_context"][self.i]
        out = self.r.steps["context"][self.i]
        assert self.r.parameters is not None and self.r.parameters.out is not None
        hd = self.c.head_dim
        parts = [self.row_text(concat[h * hd : (h + 1) * hd]) for h in range(self.c.heads)]
        joined = Section(
            "head_context",
            "Concatenating the heads",
            "z = [z_0 | … | z_{h-1}]",
            r"z = [z_0 \mid \dots \mid z_{h-1}]",
            "Each head produced a short context vector; side by side they make one vector of "
            "width d_out again.",
            (f"z({self.me}) = " + " | ".join(parts),),
            (self.vec(f"z({self.me})", concat),),
        )
        lines = [f"out({self.me}) = z({self.me})·W_o + b_o:"]
        lines += self.projection("out", concat, self.r.parameters.out, out)
        projected = Section(
            "output",
            "Output projection",
            "out = z·W_o + b_o",
            r"\text{out} = z W_o + b_o",
            "A final Linear layer mixes what the heads found, so every head can inform every "
            "output dimension. This is the context vector attn compute reports.",
            tuple(lines),
            (self.vec(f"out({self.me})", out),),
        )
        return [joined, projected]

    def kv_cache(self, cache: CacheRun) -> Section:
        step = cache.steps[self.i]
        lines = [
            f"generating {self.me} (token {self.i}): its query attends to the {step.entries} "
            f"cached token(s), {step.width} numbers each ({cache.stores}) = {step.bytes:,} bytes",
            *[
                f"  after {self.tok[s.token]}: {s.entries} cached, {s.bytes:,} bytes"
                for s in cache.steps[: self.i + 1][-MAX_KEYS:]
            ],
            f"context row from the cache vs the full computation: max |Δ| = "
            f"{step.max_abs_diff:.2e}; all {len(cache.steps)} rows "
            + ("equal within tolerance" if cache.equal else "DIFFER"),
        ]
        return Section(
            "kv_cache",
            "KV cache (token by token, as generation runs)",
            "K ← [K; k_t],  V ← [V; v_t],  z_t = softmax(q_t·Kᵀ)·V",
            r"z_t = \mathrm{softmax}(q_t K_{\le t}^\top / \sqrt{d_k})\, V_{\le t}",
            "A model generating text computes one new token at a time; keeping the keys and "
            "values of earlier tokens avoids recomputing them, at the price of memory that grows "
            "with the context. GQA, MLA and sliding windows exist to shrink that cache.",
            tuple(lines),
            (self.vec(f"z({self.me}) from the cache", cache.context[self.i]),),
        )

    def visible(self) -> int:
        """How many keys this query may see."""
        if not self.c.causal:
            return len(self.keys)
        return self.i + 1 if self.c.window is None else min(self.i + 1, self.c.window)

    def summary(self) -> Section:
        weights = self.r.steps["weights"]
        rows = (
            [(None, weights[self.i])] if weights.ndim == 2 else list(enumerate(weights[:, self.i]))
        )
        visible = self.visible()
        lines, results = [], []
        for h, w in rows:
            st = row_stats(w, TOP_K, visible)
            label = "" if h is None else f"head {h}: "
            most = ", ".join(f"{self.keys[j]} ({self.num(w[j])})" for j in st.top)
            lines.append(f"{label}attends most to {most}")
            lines.append(
                f"{label}entropy H = {self.num(st.entropy)} nats (0: all on one token; "
                f"{self.num(st.max_entropy)}: spread evenly over {visible})"
            )
            name = f"top {len(st.top)}" + ("" if h is None else f", head {h}")
            results.append(
                self.vec(name, w[list(st.top)], tuple(self.r.keys_tokens[j] for j in st.top))
            )
        return Section(
            "summary",
            "Summary",
            "top-k of α;  H = −Σ_j α_j ln α_j",
            r"H_i = -\sum_j \alpha_{ij} \ln \alpha_{ij}",
            "Where this token's attention went, and how spread out it is.",
            tuple(lines),
            tuple(results),
        )


def _tex(symbol: str) -> str:
    """A score's symbol (ω, ω', ω'') in TeX, primes kept."""
    return symbol.replace("ω", r"\omega")
