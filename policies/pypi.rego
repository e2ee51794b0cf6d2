# Decisions for the Python package index.
#
# Input (facts computed by the proxy; see README "Policy input"):
#   input.action            "page" | "file" | "metadata"
#   input.project           canonical project name
#   input.upstream          {name, kind}            kind: "internal" | "public"
#   input.client            {id, groups, address}
#   input.now_ns            current time (ns)
#   input.files[]           {filename, version, kind, hashes (algorithm names), size,
#                            upload_time_ns (null: unknown), yanked (only when true),
#                            requires_python (only when given),
#                            osv: [{id, kind, severity, summary}]      (when OSV lists exist)
#                            pin: {pinned_project, version_ok, hash_ok} (when pins exist)
#                            provenance: {present, publisher, recorded_publisher, finding}
#                                                                       (downloads only)}
#   input.facts             {typosquat: [{target, method, score, score_text, rank, evidence}]
#                             (best first), history (only with typosquat findings):
#                             {first_upload_ns, latest_upload_ns, releases, files,
#                              unknown_upload_times, provenance},
#                            identity: [{kind, message}], internal_errors: [..],
#                            previously_internal, upstream_kind, stale,
#                            osv (true when some file has OSV matches)}
# Data (admin-edited): data.airlock.config.pypi  (policies/data/pypi.json), merged over the
# defaults below; data.airlock.config.pypi.groups.<group> overrides it for client groups.
package airlock.pypi

import rego.v1

default allow := false

decision := {"allow": allow, "deny": deny, "file_deny": file_deny, "warn": warn}

allow if count(deny) == 0

defaults := {
	"deny_projects": {},
	"deny_versions": {},
	"deny_files": {},
	"typosquat": {
		"deny_score": 0.8, "suspect_score": 0.35, "warn_score": 0.6,
		"new_days": 90, "few_releases": 2, "few_releases_days": 365, "exempt": [],
	},
	"cooldown": {"days": 7, "exempt": [], "missing_upload_time": "deny", "internal": false},
	"pins": {"enforce": false},
	"osv": {"deny_malicious": true, "min_severity": "CRITICAL", "exempt": {}},
	"identity": {"exempt": []},
	"provenance": {"enforce": true, "exempt": []},
	"confusion": {"internal_unreachable": "deny"},
	"yanked": "allow",
	"wheels_only": false,
	"groups": {},
}

# The settings: the data over the defaults, then the first of the client's groups that has
# overrides on top.  "typosquat" is filled in key by key, so a partial object in the data keeps
# the other defaults (OPA's object.union merges nested objects, regopy's does not).
# Kept to one rule calling no other rule: `airlock policy test` on regopy copies every rule
# a `with` reaches once per call path, and each copy is slower the deeper it sits
# (docs/rego-engines.md, "`with` and build time"); cfg is reached from nearly every rule.
cfg := object.union(c, {"typosquat": object.union(defaults.typosquat, object.get(c, "typosquat", {}))}) if {
	b := object.union(defaults, object.get(data.airlock.config, "pypi", {}))
	overrides := [o | some g in input.client.groups; o := b.groups[g]; o]
	c := object.union(b, array.concat(overrides, [{}])[0])
}

exempt(list) if input.project in list

public if input.upstream.kind != "internal"

# --- deny lists -----------------------------------------------------------------------------

deny contains {"rule": "deny-list", "message": msg} if {
	reason := cfg.deny_projects[input.project]
	msg := concat("", ["project '", input.project, "' is on the deny list: ", reason])
}

file_deny contains {"filename": f.filename, "rule": "deny-list", "message": msg} if {
	count(cfg.deny_files) > 0
	some f in input.files
	reason := cfg.deny_files[f.filename]
	msg := concat("", ["file '", f.filename, "' is on the deny list: ", reason])
}

file_deny contains {"filename": f.filename, "rule": "deny-list", "message": msg} if {
	versions := cfg.deny_versions[input.project]
	some f in input.files
	reason := versions[f.version]
	msg := concat("", [input.project, " ", f.version, " is on the deny list: ", reason])
}

# --- integrity ------------------------------------------------------------------------------

# A file we cannot verify is never served (fail closed): the store needs an upstream hash.
file_deny contains {"filename": f.filename, "rule": "no-upstream-hash", "message": msg} if {
	some f in input.files
	count(f.hashes) == 0
	msg := concat("", ["file '", f.filename, "' has no upstream hash to verify it against"])
}

# --- typo-squats ----------------------------------------------------------------------------

# A name near a popular (or internal) one is denied when the name alone is close enough
# (deny_score), or when it is suspect (suspect_score) and the project is new: first upload
# under new_days ago, or at most few_releases releases and under few_releases_days old, or
# no upload time at all (its age cannot be checked: fail closed).  An old, established
# project is only warned about.  Findings come best first; the reason names the best one.
# Thresholds are cfg.typosquat (filled in key by key, see cfg).

squat := input.facts.typosquat[0] if {
	public
	not exempt(cfg.typosquat.exempt)
	count(input.facts.typosquat) > 0
}

squat_history := object.get(input.facts, "history", {})

squat_first_ns := object.get(squat_history, "first_upload_ns", null)

squat_releases := object.get(squat_history, "releases", 0)

squat_age_days := (input.now_ns - squat_first_ns) / 86400000000000 if is_number(squat_first_ns)

squat_new if not is_number(squat_first_ns)

squat_new if squat_age_days < cfg.typosquat.new_days

squat_new if {
	squat_releases <= cfg.typosquat.few_releases
	squat_age_days < cfg.typosquat.few_releases_days
}

squat_history_text := concat("", [
	"first upload ", format_int(squat_age_days, 10), " days ago, ",
	format_int(squat_releases, 10), plural_release,
]) if is_number(squat_first_ns)

else := "no upload times, so its age is unknown"

plural_release := " release" if squat_releases == 1

else := " releases"

squat_evidence := object.get(squat, "evidence", concat("", ["like '", squat.target, "' (", squat.method, ")"]))

squat_text := concat("", ["'", input.project, "' is ", squat_evidence, "; ", squat_history_text])

squat_basis := concat("", ["the name alone is that close (score ", squat.score_text, ")"]) if {
	squat.score >= cfg.typosquat.deny_score
}

squat_basis := concat("", [
	"a new project near a popular name is held back (score ", squat.score_text,
	"; new: under ", format_int(cfg.typosquat.new_days, 10), " days old, or at most ",
	format_int(cfg.typosquat.few_releases, 10), " releases and under ",
	format_int(cfg.typosquat.few_releases_days, 10), " days old)",
]) if {
	squat.score < cfg.typosquat.deny_score
	squat.score >= cfg.typosquat.suspect_score
	squat_new
}

deny contains {"rule": "typosquat", "message": msg} if {
	squat_basis
	msg := concat("", [
		squat_text, "; ", squat_basis,
		"; if it is legitimate, an admin can allow it in policies/data/pypi.json (typosquat.exempt)",
	])
}

warn contains {"rule": "typosquat", "message": msg} if {
	not squat_basis
	squat.score >= cfg.typosquat.warn_score
	msg := concat("", [squat_text, " (score ", squat.score_text, "); old enough to be only a warning"])
}

# --- dependency confusion -------------------------------------------------------------------

deny contains {"rule": "dependency-confusion", "message": msg} if {
	input.facts.previously_internal
	msg := concat("", [
		"'", input.project, "' was served by an internal index before; ",
		"refusing the public project of the same name",
	])
}

deny contains {"rule": "dependency-confusion", "message": msg} if {
	public
	count(input.facts.internal_errors) > 0
	cfg.confusion.internal_unreachable == "deny"
	msg := concat("", [
		"an internal index could not be asked, so '", input.project,
		"' cannot be ruled out as an internal name (", concat("; ", input.facts.internal_errors), ")",
	])
}

# --- cooldown (minimum release age) -----------------------------------------------------------

cooldown_applies if {
	not exempt(cfg.cooldown.exempt)
	cfg.cooldown.days > 0
	public
}

cooldown_applies if {
	not exempt(cfg.cooldown.exempt)
	cfg.cooldown.days > 0
	cfg.cooldown.internal
}

# Files uploaded after this instant are too new (computed once, not per file).
cooldown_cutoff_ns := input.now_ns - (((cfg.cooldown.days * 24) * 3600) * 1000000000)

file_deny contains {"filename": f.filename, "rule": "cooldown", "message": msg} if {
	cooldown_applies
	some f in input.files
	f.upload_time_ns != null
	f.upload_time_ns > cooldown_cutoff_ns
	age_ns := input.now_ns - f.upload_time_ns
	msg := concat("", [
		f.filename, " was uploaded ", format_int(age_ns / 3600000000000, 10),
		" hours ago; releases must be ", format_int(cfg.cooldown.days, 10),
		" days old (cooldown)",
	])
}

file_deny contains {"filename": f.filename, "rule": "cooldown", "message": msg} if {
	cooldown_applies
	cfg.cooldown.missing_upload_time == "deny"
	some f in input.files
	f.upload_time_ns == null
	msg := concat("", [f.filename, " has no upload time upstream, so its age cannot be checked (cooldown)"])
}

# --- approved versions (pins) -------------------------------------------------------------------

file_deny contains {"filename": f.filename, "rule": "pins", "message": msg} if {
	cfg.pins.enforce
	some f in input.files
	not f.pin.pinned_project
	msg := concat("", ["'", input.project, "' is not on the approved list (airlock allow import)"])
}

file_deny contains {"filename": f.filename, "rule": "pins", "message": msg} if {
	cfg.pins.enforce
	some f in input.files
	f.pin.pinned_project
	not f.pin.version_ok
	msg := concat("", [input.project, " ", f.version, " is not an approved version"])
}

file_deny contains {"filename": f.filename, "rule": "pins", "message": msg} if {
	cfg.pins.enforce
	some f in input.files
	f.pin.version_ok
	f.pin.hash_ok == false
	msg := concat("", [f.filename, " does not match an approved hash"])
}

# --- known malicious and vulnerable (OSV) ------------------------------------------------------

severity_rank := {"LOW": 1, "MODERATE": 2, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}

osv_exempt(id) if id in object.get(cfg.osv.exempt, input.project, [])

# The proxy sets facts.osv to false when no file of the project has an OSV match, so these
# rules skip the files; an input without the fact (written by hand) is checked file by file.
osv_facts if not input.facts.osv == false

file_deny contains {"filename": f.filename, "rule": "osv-malicious", "message": msg} if {
	cfg.osv.deny_malicious
	osv_facts
	some f in input.files
	some m in f.osv
	m.kind == "malicious"
	not osv_exempt(m.id)
	msg := concat("", [input.project, " ", f.version, " is known malicious (", m.id, ")"])
}

file_deny contains {"filename": f.filename, "rule": "osv-vulnerable", "message": msg} if {
	threshold := severity_rank[cfg.osv.min_severity]
	osv_facts
	some f in input.files
	some m in f.osv
	m.kind == "vulnerability"
	severity_rank[m.severity] >= threshold
	not osv_exempt(m.id)
	msg := concat("", [input.project, " ", f.version, " has a ", m.severity, " vulnerability (", m.id, ")"])
}

# --- project identity (revival hijack) -----------------------------------------------------------

deny contains {"rule": "project-identity", "message": msg} if {
	not exempt(cfg.identity.exempt)
	some finding in input.facts.identity
	msg := concat("", [
		"'", input.project, "' is quarantined: ", finding.message,
		"; the name may have been re-registered by someone else",
	])
}

# --- provenance regression ---------------------------------------------------------------------

file_deny contains {"filename": f.filename, "rule": "provenance", "message": f.provenance.finding} if {
	cfg.provenance.enforce
	input.action != "page" # provenance facts exist for downloads only
	not exempt(cfg.provenance.exempt)
	some f in input.files
	f.provenance.finding != null
}

# --- yanked and sdists ------------------------------------------------------------------------

file_deny contains {"filename": f.filename, "rule": "yanked", "message": msg} if {
	cfg.yanked == "deny"
	some f in input.files
	f.yanked
	msg := concat("", [f.filename, " is yanked upstream"])
}

file_deny contains {"filename": f.filename, "rule": "wheels-only", "message": msg} if {
	cfg.wheels_only
	some f in input.files
	f.kind == "sdist"
	msg := concat("", [f.filename, " is a source distribution; only wheels are allowed (it would run code at build time)"])
}
