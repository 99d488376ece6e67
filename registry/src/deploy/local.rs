//! One machine's deployer: an external URL as given, or the manifest's `dev_command` run as
//! a child process on a free port.
