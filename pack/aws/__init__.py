"""Talking to AWS: ``client`` (one client with intent-named methods and
user-facing errors), ``deploy`` (pre-flight checks, then a plan of calls that
is executed or, with --dry-run, printed), ``wire`` (the S3 trigger, merged into
the bucket's configuration), ``destroy`` (only what carries lambdapack's mark),
``owner`` (that mark, and the names of what lambdapack makes), ``settings``
(``lambdapack.toml``). Imports boto3:
nothing under ``lambdapack.packing`` imports this package.
"""
