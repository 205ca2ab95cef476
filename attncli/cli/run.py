"""From options to an AttentionResult: loading inputs and weights, computing, progress."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from attncli.cli.app import Engine, InputFormat, say
from attncli.errors import ConfigError, InputError

if TYPE_CHECKING:
    from attncli.core.config import AttentionConfig
    from attncli.core.result import AttentionResult
    from attncli.io.readers import Embeddings
    from attncli.io.weights import WeightFile


class Runner:
    """Computes attention for embeddings with one set of options and one weight file (loaded
    once), so a batch of sequences shares the very same parameters."""

    def __init__(
        self,
        weights: Path | None,
        weights_prefix: str | None,
        engine: Engine,
        device: str,
        context_only: bool = False,
        quiet: bool = True,
        kv: str | None = None,
        input_format: InputFormat | None = None,
        inputs: Sequence[str] = (),
        **options: object,
    ) -> None:
        self.values = {k: getattr(v, "value", v) for k, v in options.items()}
        if kv == "-" and "-" in inputs:  # standard input feeds the queries or the memory
            raise ConfigError("--kv - and an input '-' both read standard input; give a file")
        self.memory = None if kv is None else load_input(kv, input_format)
        self.weights, self.engine, self.device = weights, engine.value, device
        self.context_only, self.quiet = context_only, quiet
        self.file = None
        if weights is not None:
            from attncli.io.weights import load_weights

            self.file = load_weights(weights, weights_prefix)

    def run(self, emb: Embeddings) -> AttentionResult:
        """With a weight file, an unset ``mode`` is the one its keys imply and ``heads`` may come
        from its metadata; multi-head weights without a head count are an error, never a guess."""
        from attncli.core import AttentionConfig
        from attncli.core import compute as run
        from attncli.core.attention import from_parameters
        from attncli.core.config import PRESETS
        from attncli.core.params import parameters_from_named

        values = dict(self.values)
        parameters = None
        wf = self.file
        notes = list(wf.notes) if wf is not None else []
        values["mode"] = values["mode"] or (wf.mode if wf is not None else "simple")
        split = PRESETS[values["mode"]].split if values["mode"] in PRESETS else False
        if wf is not None:
            notes += _apply_hints(values, wf, str(self.weights))
        if wf is not None and split and values["heads"] is None:
            if wf.heads is None:
                raise ConfigError(
                    f"{self.weights}: {values['mode']} weights do not record the head count; "
                    "pass --heads"
                )
            values["heads"] = wf.heads
        config = AttentionConfig(**values)
        memory = self.memory
        if wf is not None:
            d_in = emb.values.shape[1]
            d_kv = d_in if memory is None else memory.values.shape[1]
            try:
                parameters = parameters_from_named(wf.named, config, d_in, str(self.weights), d_kv)
            except InputError as e:  # told in the file's own names (k_proj, not W_key)
                raise InputError(wf.in_file_names(str(e))) from None
            config = from_parameters(config, parameters)  # d_out, kv heads, latent width
        wanted = self.context_only and not self.quiet
        with _progress(emb.values.shape, config, wanted) as progress:
            result = run(
                emb.values, emb.tokens, config, parameters=parameters, engine=self.engine,
                device=self.device, context_only=self.context_only, progress=progress,
                kv=None if memory is None else memory.values,
                kv_tokens=None if memory is None else memory.tokens,
            )  # fmt: skip
        if wf is not None:
            if "c_attn" in wf.layout and not values.get("causal"):
                notes.append(f"{self.weights}: c_attn weights come from a causal (GPT) model; "
                             "add --causal for its masking")  # fmt: skip
            result = replace(
                result, weights_source=str(self.weights), weights_prefix=wf.prefix or None,
                unused_keys=wf.unused, notes=(*notes, *result.notes),
            )  # fmt: skip
        for note in result.notes:
            say("note", note)
        return result


def _apply_hints(values: dict, wf: WeightFile, source: str) -> list[str]:
    """Head counts, RoPE, and Gemma's soft-cap and score scale from what the file or its folder
    says (nanoGPT's model_args, a config.json), where the command line left them open; each one
    said in a note."""
    notes = []
    hints = wf.hints
    if values.get("heads") is None and wf.heads is None and "heads" in hints:
        values["heads"] = hints["heads"]
        notes.append(f"{source}: --heads {hints['heads']} from the checkpoint's settings")
    grouped = values.get("mode") in ("gqa", "mqa")
    if grouped and values.get("kv_heads") is None and "kv_heads" in hints:
        values["kv_heads"] = hints["kv_heads"]
        notes.append(f"{source}: --kv-heads {hints['kv_heads']} from config.json")
    if hints.get("rope") and not values.get("rope"):
        values["rope"], values["rope_base"] = True, hints["rope_base"]
        notes.append(f"{source}: RoPE (base {hints['rope_base']:g}) from config.json")
    if "softcap" in hints and values.get("softcap") is None:
        values["softcap"] = hints["softcap"]
        notes.append(f"{source}: --softcap {hints['softcap']:g} (attn_logit_softcapping) "
                     "from config.json")  # fmt: skip
    for option, note in hints.get("unapplied", {}).items():  # said unless the option is given
        if values.get(option) is None:
            notes.append(note)
    if (
        "scale_dim" in hints
        and values.get("scale_dim") is None
        and values.get("scale") is not False
    ):
        values["scale_dim"] = hints["scale_dim"]
        notes.append(f"{source}: scores scaled by 1/√{hints['scale_dim']:g} "
                     "(query_pre_attn_scalar) from config.json")  # fmt: skip
    return notes


def load_input(input: str, input_format: InputFormat | None) -> Embeddings:
    from attncli.io.readers import load_embeddings

    if input == "-" and sys.stdin.isatty():
        sys.stderr.write("attn: reading embeddings from standard input (end with Ctrl-D)…\n")
    return load_embeddings(input, input_format.value if input_format else None)


# Show a progress bar for work of at least this many multiply-adds (about a second here).
PROGRESS_WORK = 2e10


def _progress(shape: tuple[int, int], config: AttentionConfig, wanted: bool):
    """A progress callback for long blockwise work on a terminal, else a context yielding None."""
    if not (wanted and sys.stderr.isatty()):
        return nullcontext(None)
    n, d_in = shape
    resolved = config.resolved(d_in)
    if 2.0 * n * n * resolved.head_dim * resolved.heads < PROGRESS_WORK:
        return nullcontext(None)
    from attncli.render.progress import progress_bar

    return progress_bar(n * resolved.heads, "attention")


def narrow(result: AttentionResult, query: str | None) -> AttentionResult:
    """The result kept to one query's rows when ``--query`` names one."""
    if query is None:
        return result
    from attncli.core.result import find_query

    return result.for_query(find_query(result.tokens, query))
