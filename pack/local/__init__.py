"""Run deployment zips locally, the way Lambda does.

- ``runtime_api``: the Lambda Runtime API, served on 127.0.0.1 for one sandbox.
- ``sandbox``: one function process under AWS's own runtime interface client
  (awslambdaric), isolated like ``/var/task``; cold and warm starts, timeouts.
- ``lambda_runtime``: the packages the Lambda runtime provides beside the zip
  (boto3, awslambdaric), installed once into the cache.
- ``dispatcher``: asynchronous invocations with Lambda's retries, N at once.
- ``motoseam``: the one place that reaches into moto: its S3→Lambda notifications,
  a deployed function's configuration and zip, CloudWatch Logs, its server.
- ``motoprocess``: moto's server in a process of its own, talking to the local AWS
  by pipes (notices of invocations and code; log and barrier requests).
- ``localaws``: moto's process + dispatcher, for ``lambdapack local`` and the demo.
- ``s3event``: an S3 ObjectCreated event for keys; ``private_s3``: a moto S3 of one
  call's own (invoke --image, estimate). Uploads and results are ``aws.objects``.
"""
