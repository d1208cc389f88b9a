"""Building the zip: everything ``lambdapack pack`` does, with no AWS call.

``pipeline`` runs the stages in one loop (model, install, strip, prune,
handler, compile, stage, check, zip, smoke); each stage's work lives in its own
module (``model``, ``install`` with ``target``, ``strip``, ``prune``,
``bytecode``, ``staging``, ``compat`` with ``elf``, ``zipper``, ``report``,
``smoke``). ``docker`` runs the same pipeline inside an image of the target;
``compare`` explains the differences between two zips.
"""
