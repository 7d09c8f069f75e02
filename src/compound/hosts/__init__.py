"""Docker hosts anywhere (this machine, a machine over SSH, a nested test
host, a local VM), recorded like Docker Machine did: one record and one
Docker context per host, with facts measured on the host itself; and the
Swarm target that deploys one application across them."""

# The package's public face is its modules, each imported where it is needed
# (a command that never touches a host pays for none of them).
__all__ = [
    "contexts",
    "deploy",
    "doctor_checks",
    "drivers",
    "engine",
    "errors",
    "facts",
    "inventory",
    "kvmprobe",
    "nested_image",
    "qemu_host",
    "records",
    "registry",
    "ssh",
    "stack",
    "swarm",
    "vm_services",
]
