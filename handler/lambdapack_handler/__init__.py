"""What runs inside the Lambda function: decode an image, run the model, say what it is.

Imports only what the zip carries (numpy, Pillow, the inference runtime),
the standard library, and boto3 from the Lambda runtime (lazily, so the
package also runs where boto3 is absent, e.g. in ``lambdapack pack``'s
smoke run).
"""
