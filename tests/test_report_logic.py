from lambdapack.limits import UNZIPPED_BYTES as UNZIPPED_LIMIT
from lambdapack.limits import request_bytes
from lambdapack.packing.report import (
    dist_name,
    limit_rows,
    over_limit_message,
    owners_from_records,
    package_of,
    sum_by_package,
)

RECORDS = {
    "numpy-2.2.6.dist-info/RECORD": (
        "numpy/__init__.py,sha256=x,100\n"
        "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so,sha256=y,10\n"
        "numpy.libs/libscipy_openblas64_-56d6093b.so,sha256=z,5\n"
        "numpy-2.2.6.dist-info/RECORD,,\n"
    ),
    "pillow-12.2.0.dist-info/RECORD": "PIL/Image.py,sha256=a,1\npillow.libs/libjpeg.so,sha256=b,2\n",
}


def test_dist_info_names():
    assert dist_name("numpy-2.2.6.dist-info") == ("numpy", "2.2.6")
    assert dist_name("typing_extensions-4.16.0.dist-info") == ("typing_extensions", "4.16.0")


def test_files_are_attributed_to_their_distribution():
    owners = owners_from_records(RECORDS)
    assert package_of("numpy.libs/libscipy_openblas64_-56d6093b.so", owners) == "numpy"
    assert package_of("pillow.libs/libjpeg.so", owners) == "pillow"
    assert package_of("PIL/Image.py", owners) == "pillow"
    # bytecode compiled by lambdapack goes with its source
    assert package_of("PIL/__pycache__/Image.cpython-311.pyc", owners) == "pillow"
    assert package_of("numpy-2.2.6.dist-info/METADATA", owners) == "numpy"
    assert package_of("index.py", owners) == "handler"
    assert package_of("__pycache__/index.cpython-311.pyc", owners) == "handler"
    assert package_of("lambdapack_handler/app.py", owners) == "handler"
    assert package_of("model/model.tflite", owners) == "model"
    assert package_of("unknown_pkg/mod.py", owners) == "unknown_pkg"


def test_sum_by_package():
    owners = owners_from_records(RECORDS)
    sizes = {"PIL/Image.py": 10, "pillow.libs/libjpeg.so": 5, "numpy/__init__.py": 1}
    assert sum_by_package(sizes, owners) == {"pillow": 15, "numpy": 1}


def test_limits_arithmetic():
    assert request_bytes(3) == 4
    assert request_bytes(52_428_800) == 69_905_068
    rows = {row.name: row for row in limit_rows(60 * 1024 * 1024, UNZIPPED_LIMIT + 1)}
    assert not rows["direct upload (zipped)"].ok
    assert not rows["direct upload (zipped)"].fatal
    assert not rows["unzipped (function + layers)"].ok
    assert rows["unzipped (function + layers)"].fatal
    exact = {row.name: row for row in limit_rows(1, UNZIPPED_LIMIT)}
    assert exact["unzipped (function + layers)"].ok


def test_over_limit_message_says_by_how_much_and_which_packages_weigh_most():
    message = over_limit_message(UNZIPPED_LIMIT + 10 * 1024 * 1024, {"tensorflow": 900, "numpy": 50})
    assert "10.0 MB over" in message
    assert "262,144,000 bytes" in message
    assert message.index("tensorflow") < message.index("numpy")
