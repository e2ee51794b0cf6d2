# Decisions for the Python package index.
#
# Input (facts computed by the proxy; see README "Policy input"):
#   input.action       "page" | "file" | "metadata"
#   input.project      canonical project name
#   input.files[]      {filename, version, kind, hashes, size, upload_time_ns, yanked, ...}
#   input.upstream     {name, kind}
#   input.client       {id, groups, address}
# Data (admin-edited): data.airlock.config.pypi  (policies/data/pypi.json)
package airlock.pypi

import rego.v1

default allow := false

decision := {"allow": allow, "deny": deny, "file_deny": file_deny}

allow if count(deny) == 0

cfg := object.get(data.airlock.config, "pypi", {})

deny_projects := object.get(cfg, "deny_projects", {})

deny_files := object.get(cfg, "deny_files", {})

deny_versions := object.get(cfg, "deny_versions", {})

# A whole project on the deny list: every page and file of it is refused.
deny contains {"rule": "deny-list", "message": msg} if {
	reason := deny_projects[input.project]
	msg := concat("", ["project '", input.project, "' is on the deny list: ", reason])
}

# One file on the deny list, by exact file name.
file_deny contains {"filename": f.filename, "rule": "deny-list", "message": msg} if {
	some f in input.files
	reason := deny_files[f.filename]
	msg := concat("", ["file '", f.filename, "' is on the deny list: ", reason])
}

# Versions of a project on the deny list.
file_deny contains {"filename": f.filename, "rule": "deny-list", "message": msg} if {
	versions := deny_versions[input.project]
	some f in input.files
	reason := versions[f.version]
	msg := concat("", [input.project, " ", f.version, " is on the deny list: ", reason])
}

# A file we cannot verify is never served (fail closed): the store needs an upstream hash.
file_deny contains {"filename": f.filename, "rule": "no-upstream-hash", "message": msg} if {
	some f in input.files
	count(f.hashes) == 0
	msg := concat("", ["file '", f.filename, "' has no upstream hash to verify it against"])
}
