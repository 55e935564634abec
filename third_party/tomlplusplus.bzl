"""@tomlplusplus: Debian's toml++ headers, copied with one fix (tomlplusplus_fix.py)."""

def _tomlplusplus_repository_impl(ctx):
    script = ctx.path(ctx.attr._fix)
    result = ctx.execute(["python3", str(script), ctx.attr.headers, "include/toml++"])
    if result.return_code != 0:
        fail("@tomlplusplus: %s failed:\n%s" % (script, result.stderr))
    if result.stderr:
        print(result.stderr)  # buildifier: disable=print
    ctx.symlink(ctx.attr.build_file, "BUILD.bazel")

tomlplusplus_repository = repository_rule(
    implementation = _tomlplusplus_repository_impl,
    attrs = {
        "headers": attr.string(default = "/usr/include/toml++"),
        "build_file": attr.label(allow_single_file = True, mandatory = True),
        "_fix": attr.label(default = "//third_party:tomlplusplus_fix.py", allow_single_file = True),
    },
    # Reads the system's headers: fetched again when Bazel's server restarts, so an apt
    # upgrade of libtomlplusplus-dev is seen.
    local = True,
)
