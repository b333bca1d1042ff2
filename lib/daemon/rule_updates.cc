// SIGHUP reloads and etcd revisions, applied on the control thread; see rule_updates.h.
#include "daemon/rule_updates.h"

#include <cstdio>
#include <filesystem>

#include "rules/rules.h"

namespace portcullis::daemon {

void reload_rules(control::runtime& rt)
{
	std::printf("portcullisd: SIGHUP: reloading %s\n", rt.configured_file().c_str());
	std::fflush(stdout);
	const auto report = rt.reload();
	for (const auto& d : report.errors)
		std::fprintf(stderr, "%s\n", rules::format(d).c_str());
	if (!report.ok)
		std::fprintf(stderr, "portcullisd: SIGHUP: %s not loaded (%s); the running rules (generation %lu, digest %s) stay\n",
		             rt.configured_file().c_str(),
		             report.errors.empty() ? report.error.c_str()
		                                   : (std::to_string(report.errors.size()) + " error(s)").c_str(),
		             (unsigned long)report.generation, rt.digest().c_str());
	std::fflush(stderr);
}

// A new revision of the followed etcd key: compiled and swapped in as a push would be. The text is one
// self-contained rule set (no include: nothing on this appliance's disk may change what the fleet's set
// means); `app` bundles come from the apps directory beside the configured rules file.
void apply_from_etcd(control::runtime& rt, etcd::follower& feed, const std::string& rules_file)
{
	auto change = feed.take();
	if (!change)
		return;
	const std::string name = feed.where().url() + "@" + std::to_string(change->mod_revision);
	if (change->deleted) {
		std::printf("portcullisd: rules: %s deleted; the running rules (generation %lu, digest %s) stay\n", name.c_str(),
		            (unsigned long)rt.policy().generation, rt.digest().c_str());
		std::fflush(stdout);
		return;
	}
	rules::parse_options opts;
	opts.max_include_depth = 0;
	opts.apps_dir = (std::filesystem::path(rules_file).parent_path() / "apps").string();
	const auto report = rt.push_text(change->text, name, opts, control::rule_origin::etcd);
	for (const auto& d : report.errors)
		std::fprintf(stderr, "%s\n", rules::format(d).c_str());
	if (report.ok)
		rt.set_source_revision(change->mod_revision);
	else
		std::fprintf(stderr, "portcullisd: rules: %s refused (%s); the running rules (generation %lu, digest %s) stay\n",
		             name.c_str(),
		             report.errors.empty() ? report.error.c_str()
		                                   : (std::to_string(report.errors.size()) + " error(s)").c_str(),
		             (unsigned long)report.generation, rt.digest().c_str());
	std::fflush(stderr);
}

} // namespace portcullis::daemon
