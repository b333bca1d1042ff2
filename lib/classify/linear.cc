#include "classify/linear.h"

#include <vector>

namespace portcullis::classify {
namespace {

class linear_classifier final : public classifier {
public:
	explicit linear_classifier(std::span<const rule_entry> rules)
	{
		rules_.reserve(rules.size());
		for (const auto& r : rules)
			rules_.push_back({r.id, *r.match});
	}
	backend kind() const override { return backend::linear; }
	size_t memory_bytes() const override { return rules_.size() * sizeof(owned_rule); }

	void classify(const key_v4* keys, uint32_t n, uint32_t* results) const override { run(keys, n, results); }
	void classify(const key_v6* keys, uint32_t n, uint32_t* results) const override { run(keys, n, results); }

private:
	struct owned_rule {
		uint32_t id;
		tuple_match match;
	};

	template <class Key>
	void run(const Key* keys, uint32_t n, uint32_t* results) const
	{
		for (uint32_t i = 0; i < n; ++i) {
			results[i] = no_match;
			for (const auto& r : rules_) {
				if (matches(r.match, keys[i])) {
					results[i] = r.id;
					break;
				}
			}
		}
	}

	std::vector<owned_rule> rules_;
};

} // namespace

build_result build_linear(std::span<const rule_entry> rules)
{
	build_result r;
	r.classifier = std::make_unique<linear_classifier>(rules);
	return r;
}

} // namespace portcullis::classify
