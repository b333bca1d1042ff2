#include "dataplane/conn_counts.h"

namespace portcullis::dataplane {

uint8_t conn_counts::id_for(const std::string& name)
{
	// A name given an id counts as in use until the next in_use(): two new rules of one rule set never
	// reclaim the same id.
	in_use_.insert(name);
	if (const auto it = ids_.find(name); it != ids_.end())
		return it->second;
	bool taken[max_ids + 1] = {};
	for (const auto& [n, id] : ids_)
		taken[id] = true;
	for (uint32_t id = 1; id <= max_ids; ++id)
		if (!taken[id]) {
			ids_.emplace(name, uint8_t(id));
			return uint8_t(id);
		}
	// Every id has a name: take one that the running rules do not use and that counts no flow.
	for (auto it = ids_.begin(); it != ids_.end(); ++it)
		if (!in_use_.count(it->first) && live(it->second) == 0) {
			const uint8_t id = it->second;
			ids_.erase(it);
			ids_.emplace(name, id);
			return id;
		}
	return 0;
}

void conn_counts::flow_removed(void* self, const flow::flow_entry& e)
{
	if (e.conn_limit == 0)
		return;
	const u128 opener = e.opener_is_b ? e.key.b() : e.key.a();
	static_cast<conn_counts*>(self)->closed(e.conn_limit, source_key(e.key.family == 6, opener));
}

} // namespace portcullis::dataplane
