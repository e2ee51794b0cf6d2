# Tests for pypi.rego: `airlock policy test` (real OPA when installed, else regopy).
#
# Override input and data only with literal values on a path (`with input.files as [...]`,
# `with data.airlock.config.pypi as {...}`), never `with input as ...`: the embedded engine
# crashes or parses that wrongly (README, "policy test / eval").
package airlock.pypi_test

import rego.v1

import data.airlock.pypi

# input.now_ns is 2023-11-14 (1700000000000000000); "old" files were uploaded in 2020.

test_hashed_old_files_are_allowed if {
	d := pypi.decision with input.project as "requests" with input.upstream as {"name": "pypi", "kind": "public"} with input.now_ns as 1700000000000000000 with input.files as [{"filename": "requests-2.31.0-py3-none-any.whl", "version": "2.31.0", "kind": "wheel", "hashes": ["sha256"], "upload_time_ns": 1600000000000000000}]
	d.allow == true
	count(d.file_deny) == 0
}

test_deny_listed_project_is_denied_with_its_reason if {
	d := pypi.decision with input.project as "evil-pkg" with input.upstream as {"name": "pypi", "kind": "public"} with input.files as [] with data.airlock.config.pypi as {"deny_projects": {"evil-pkg": "known malware"}}
	d.allow == false
	some r in d.deny
	r.rule == "deny-list"
	contains(r.message, "known malware")
}

test_deny_listed_version_filters_only_that_version if {
	d := pypi.decision with input.project as "tiny-lib" with input.upstream as {"name": "pypi", "kind": "public"} with input.now_ns as 1700000000000000000 with input.files as [{"filename": "tiny_lib-1.0-py3-none-any.whl", "version": "1.0", "hashes": ["sha256"], "upload_time_ns": 1600000000000000000}, {"filename": "tiny_lib-1.1-py3-none-any.whl", "version": "1.1", "hashes": ["sha256"], "upload_time_ns": 1600000000000000000}] with data.airlock.config.pypi as {"deny_versions": {"tiny-lib": {"1.1": "CVE-2099-0001"}}}
	d.allow == true
	denied := {f.filename | some f in d.file_deny}
	denied == {"tiny_lib-1.1-py3-none-any.whl"}
}

test_file_without_upstream_hash_is_refused if {
	d := pypi.decision with input.project as "tiny-lib" with input.upstream as {"name": "pypi", "kind": "public"} with input.now_ns as 1700000000000000000 with input.files as [{"filename": "tiny-lib-1.0.tar.gz", "version": "1.0", "hashes": [], "upload_time_ns": 1600000000000000000}]
	some f in d.file_deny
	f.rule == "no-upstream-hash"
}

test_young_public_release_waits_for_the_cooldown if {
	d := pypi.decision with input.project as "tiny-lib" with input.upstream as {"name": "pypi", "kind": "public"} with input.now_ns as 1700000000000000000 with input.files as [{"filename": "tiny_lib-2.0-py3-none-any.whl", "version": "2.0", "hashes": ["sha256"], "upload_time_ns": 1699996400000000000}]
	some f in d.file_deny
	f.rule == "cooldown"
}

test_high_scoring_typosquat_is_denied if {
	not pypi.allow with input.project as "reqeusts" with input.upstream as {"name": "pypi", "kind": "public"} with input.files as [] with input.facts.typosquat as [{"target": "requests", "method": "edit distance", "score": 0.95, "score_text": "0.95"}]
}
