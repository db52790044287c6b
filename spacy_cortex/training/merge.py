"""Interpolate two checkpoints of the same architecture, weight by weight (WiSE-FT).

    python -m spacy_cortex.training.merge BASE FINETUNED OUTPUT --weight 0.5

`OUTPUT = (1 - weight) * BASE + weight * FINETUNED` for every tensor. When FINETUNED was
trained from BASE, the interpolated model often keeps most of what FINETUNED gained and most of
what BASE knew that FINETUNED forgot, with no training at all. Method: Wortsman et al.,
"Robust fine-tuning of zero-shot models" (CVPR 2022), section 3 (weight-space ensembling).
The configuration (dropout, which `spacy train` and `adapt` use), tokenizer files and
`cortex.json` come from BASE, the model the user had. The output is written in fp16, as
`export` writes it; a model card already in OUTPUT is kept.
"""
from pathlib import Path

import torch
import typer

from ..commands import typer_app
from ..core.model import CortexModel

app = typer_app()


def interpolate(base: torch.nn.Module, finetuned: torch.nn.Module, weight: float) -> None:
    """Set `base`'s parameters and buffers to `(1 - weight) * base + weight * finetuned`, in
    place, computed in fp32.

    weight: in [0, 1]; 0 leaves BASE unchanged, 1 gives FINETUNED. Integer buffers (ids) stay
    as BASE has them.
    Raises ValueError: weight outside [0, 1], or the two models' tensor names or shapes differ
    (the first differing name is given).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--weight must be in [0, 1], got {weight}")
    base_state, tuned_state = base.state_dict(), finetuned.state_dict()
    if base_state.keys() != tuned_state.keys():
        name = sorted(base_state.keys() ^ tuned_state.keys())[0]
        raise ValueError(f"the checkpoints are not the same architecture: only one has {name!r}")
    with torch.no_grad():
        for name, start in base_state.items():
            tuned = tuned_state[name]
            if start.shape != tuned.shape:
                raise ValueError(f"{name!r} has shape {tuple(start.shape)} in BASE and {tuple(tuned.shape)} in FINETUNED")
            if start.is_floating_point():
                start.copy_(torch.lerp(start.float(), tuned.float(), weight).to(start.dtype))


@app.command()
def merge(
    base: Path = typer.Argument(..., help="The checkpoint FINETUNED was trained from (weight 0)"),
    finetuned: Path = typer.Argument(..., help="The trained checkpoint (weight 1)"),
    output: Path = typer.Argument(..., help="Folder to write (fp16 safetensors + tokenizer)"),
    weight: float = typer.Option(0.5, "--weight", "-w", help="FINETUNED's share, 0 to 1"),
):
    """Write (1 - weight) * BASE + weight * FINETUNED (WiSE-FT) in fp16."""
    start, tuned = CortexModel.from_path(base), CortexModel.from_path(finetuned)
    interpolate(start.hf_model.float(), tuned.hf_model.float(), weight)
    start.save(output, fp16=True)
    typer.echo(f"Wrote {output}: {1 - weight:g} x {base} + {weight:g} x {finetuned}")


if __name__ == "__main__":
    app()
