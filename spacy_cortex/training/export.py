"""Export a trained checkpoint as an fp16 safetensors model.

    python -m spacy_cortex.training.export training/cortex/final training/export/cortex-mini-en

project.yml's `export` writes there; `weasel run ship` exports into
spacy_cortex/models/cortex-mini-en to replace the shipped model (its model card is kept).
"""
from pathlib import Path

import typer

from ..core.model import CortexModel
from ..commands import typer_app

app = typer_app()


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="Trained HF folder (fp32)"),
    output: Path = typer.Argument(..., help="Folder to write (fp16 safetensors + tokenizer)"),
):
    """Write the checkpoint in fp16; a model card already in the folder is kept."""
    model = CortexModel.from_path(checkpoint)
    model.save(output, fp16=True)
    size = (output / "model.safetensors").stat().st_size / 2**20
    typer.echo(f"Wrote {output} ({size:.1f} MiB)")


if __name__ == "__main__":
    app()
