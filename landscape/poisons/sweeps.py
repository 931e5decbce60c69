"""The measured budget sweeps the method docstrings cite: one note per footnote mark, kept in one place.

A method's docstring marks a figure with ¹ (the digits sweep) or ² (the MNIST-5k sweep) and does not repeat
what was measured: `with_notes` adds the note of every mark it uses once, when the class is defined
(`PoisonMethod.__init_subclass__`), before its "Args (options):" section. So `help()`, `inspect.getdoc` and the
app's "About" box (`landscape.app.engine.method_defaults`) show the notes, and a re-measurement is edited here only.
"""

from __future__ import annotations

import re
import textwrap

NOTES = {
    "¹": "Measured with bench/ue_budget.py (bench/results/ue_budget.txt, rows in ue_budget.jsonl): `cnn` victim, "
         "default TrainSpec, 30 epochs, seed 0, 100 % poisoned; clean training 97.2 %. Seeds scatter widely (EM at "
         "64/255: 35.6, 66.9, 43.3 % over seeds 0-2); bench/ue_effect.py averages 3 seeds "
         "(bench/results/ue_effect.txt). Crafting seconds are those rows' (one CPU thread).",
    "²": "Measured with bench/ue_budget.py on mnist-5k (bench/results/ue_budget_mnist5k.txt, with seeds 1-2 of "
         "bench/ue_effect.py; the same options serve mnist and fashion-mnist): `cnn` victim, default TrainSpec but "
         "20 epochs, seed 0, 100 % poisoned, `lenet5` surrogates; clean training 96.0 %. The `cnn` sits at chance "
         "for its first ~4 epochs on clean MNIST-5k; \"not trained\" marks runs that never left that plateau "
         "(training accuracy about 10 %): their drop is a failure to train at all, not a learnt shortcut (training "
         "accuracy near 100 %, clean test accuracy low).",
}
WIDTH = 116  # the docstrings' line length once indented


def with_notes(doc: str | None) -> str | None:
    """`doc` with the note of each mark of `NOTES` it uses, in mark order, before its "Args (options):" section.

    Indented as the docstring's body (so `inspect.cleandoc` dedents them with it); a note already present is not
    added again, and a docstring without marks is returned unchanged.
    """
    if not doc:
        return doc
    notes = [(mark, text) for mark, text in NOTES.items()
             if re.search(rf"(?<=\w){mark}", doc) and text not in " ".join(doc.split())]  # "sweep¹", not "(32/8)²"
    if not notes:
        return doc
    match = re.search(r"\n([ \t]*)Args \(options\):", doc)
    indent = match.group(1) if match else _body_indent(doc)
    block = "\n".join(textwrap.fill(f"{mark} {text}", WIDTH, initial_indent=indent, subsequent_indent=indent,
                                    break_on_hyphens=False) for mark, text in notes)
    if match:
        return f"{doc[:match.start()]}\n{block}\n{doc[match.start():]}"
    return f"{doc.rstrip()}\n\n{block}\n{indent}"


def _body_indent(doc: str) -> str:
    lines = [line for line in doc.splitlines()[1:] if line.strip()]
    return min((line[:len(line) - len(line.lstrip())] for line in lines), key=len, default="")
