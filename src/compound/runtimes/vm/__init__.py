"""The VM runtime: a service's OCI image booted as a QEMU guest inside a
launcher container. See NOTES.md for the measured design decisions.

Modules (nothing is imported eagerly; each pulls in only what it needs):
kernel, initramfs, basedisk, imageconfig, guestconfig, qemu, accel, vm,
launcher_image, launcher, driver, fingerprint (its host checks).
"""

from ._util import default_cache_dir

__all__ = ["default_cache_dir"]
