// Rule sets that arrive while the daemon runs, besides a push on the control socket (which the control
// server hands to the runtime itself): the configured file again on SIGHUP, and each new revision of the
// followed etcd key (rules.watch). Both go through the runtime's push path and print what happened.
//
// Threads: the control thread (the runtime's member functions are for it alone).
#pragma once

#include <string>

#include "control/runtime.h"
#include "etcd/etcd.h"

namespace portcullis::daemon {

// SIGHUP: the configured rules file again, through the same path as a push. Errors are logged with
// their file:line:column and change nothing.
void reload_rules(control::runtime& rt);

// Takes the newest change of the followed key, if there is one, and applies it. rules_file is the
// configured rules file: `app` bundles come from the apps directory beside it.
void apply_from_etcd(control::runtime& rt, etcd::follower& feed, const std::string& rules_file);

} // namespace portcullis::daemon
