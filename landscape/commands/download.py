"""`python -m landscape download`: fetch and verify the official CIFAR archive into a folder."""

from __future__ import annotations

import argparse

from landscape.commands import COMMANDS, Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=["cifar10", "cifar100"])
    p.add_argument("--root", required=True, help="folder to download and extract into")
    p.add_argument("--url", default=None, help="mirror URL (file:// works); the official MD5 is still checked")
    p.add_argument("--md5", default=None, help="expected MD5 of the archive at --url")


def run(a: argparse.Namespace) -> int:
    from landscape.data import cifar

    folder = cifar.download(a.dataset, a.root, url=a.url, md5=a.md5)
    print(f"{a.dataset} ready in {folder}; use --dataset {a.dataset} --data-root {a.root}")
    return 0


COMMANDS.register("download")(Command("download and verify CIFAR-10/100 (python version)", add_arguments, run))
