#include "dataplane/conn_counts.h"

namespace portcullis::dataplane {

uint8_t conn_counts::id_for(const std::string& name)
{
	if (const auto it = ids_.find(name); it != ids_.end())
		return it->second;
	if (ids_.size() >= max_ids)
		return 0;
	const uint8_t id = uint8_t(ids_.size() + 1);
	ids_.emplace(name, id);
	return id;
}

void conn_counts::flow_removed(void* self, const flow::flow_entry& e)
{
	if (e.conn_limit == 0)
		return;
	const u128 opener = e.opener_is_b ? e.key.b() : e.key.a();
	static_cast<conn_counts*>(self)->closed(e.conn_limit, source_key(e.key.family == 6, opener));
}

} // namespace portcullis::dataplane
