"""The example notebook runs top to bottom (nbclient, a real kernel, spawned workers)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_python_api_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(tmp_path)
    notebook = nbformat.read(ROOT / "examples" / "python_api.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
                       for o in cell.get("outputs", [])) for cell in notebook.cells
               if cell.cell_type == "code"]
    assert "best so far" in outputs[1]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["digits-lr", "mlp", "toy"]
    assert "'evaluations': 10" in outputs[-2]  # the ask/tell run spent its budget
