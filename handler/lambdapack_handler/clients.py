"""AWS clients from the Lambda runtime's boto3. Standard library only, so it
can be imported before staged dependencies (numpy, TensorFlow) are unpacked."""

from __future__ import annotations


def s3_client():
    """An S3 client from the runtime's boto3, or None where there is none (smoke runs)."""
    try:
        import boto3
    except ImportError:
        return None
    return boto3.client("s3")
