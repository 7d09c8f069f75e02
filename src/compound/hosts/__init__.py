"""Docker hosts anywhere (this machine, a machine over SSH, a nested test
host, a local VM), recorded like Docker Machine did: one record and one
Docker context per host, with facts measured on the host itself; and the
Swarm target that deploys one application across them."""
