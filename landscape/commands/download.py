"""`python -m landscape download`: fetch, verify and unpack the official files of a data set into a folder."""

from __future__ import annotations

import argparse

from landscape.commands import COMMANDS, Command

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100")


def md5_digest(text: str) -> str:
    """An argparse ``type``: `landscape.data.fetch.md5_digest` (the check `cifar.download` makes), as a usage error."""
    from landscape.data.fetch import md5_digest as checked
    from landscape.errors import SpecError

    try:
        return checked(text)
    except SpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from landscape.data.fetch import DEFAULT_LIMITS

    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, help="folder to download and extract into")
    p.add_argument("--url", default=None,
                   help="mirror (file:// works): CIFAR: the archive's URL; MNIST: the folder holding the four .gz "
                        "files. The official checksums are still checked")
    p.add_argument("--md5", type=md5_digest, default=None, help="CIFAR only: expected MD5 of the archive at --url")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_LIMITS.max_bytes,
                   help="cap on each download and on the bytes one archive or .gz file extracts to "
                        f"(default {DEFAULT_LIMITS.max_bytes:,})")
    p.add_argument("--max-members", type=int, default=DEFAULT_LIMITS.max_members,
                   help=f"cap on the members of a tar archive (default {DEFAULT_LIMITS.max_members:,})")


def run(a: argparse.Namespace) -> int:
    from landscape.data.fetch import Limits
    from landscape.errors import SpecError
    from landscape.paths import user_path, writable_folder

    limits = Limits(max_bytes=a.max_bytes, max_members=a.max_members)
    root = writable_folder(user_path(a.root, "--root"), "--root")
    if a.dataset.startswith("cifar"):
        from landscape.data import cifar

        folder = cifar.download(a.dataset, root, url=a.url, md5=a.md5, limits=limits)
    else:
        from landscape.data import mnist

        if a.md5 is not None:
            raise SpecError(f"--md5 is for the single CIFAR archive; {a.dataset}'s four files are checked against "
                            "their official MD5s")
        folder = mnist.download(a.dataset, root, url=a.url, limits=limits)
    print(f"{a.dataset} ready in {folder}; use --dataset {a.dataset} --data-root {a.root}")
    return 0


COMMANDS.register("download")(Command("download and verify MNIST, Fashion-MNIST or CIFAR-10/100", add_arguments, run))
