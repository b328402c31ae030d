import Foundation
import PackagePlugin

/// Records the commit the executable is built from (`fletcher --version`): before every build, a
/// shell asks git for the checkout's commit (with `-dirty` when tracked files differ from it, and
/// `unknown` outside a git checkout) and writes `BuildInfo.swift` when that differs from the last.
@main
struct BuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let generated = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let script = """
            mkdir -p "$2"
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$commit" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
              commit="$commit-dirty"
            fi
            text="/// The commit this executable was built from (the BuildInfo plugin).
            let buildCommit = \\"$commit\\""
            [ "$(cat "$2/BuildInfo.swift" 2>/dev/null)" = "$text" ] || printf '%s\\n' "$text" > "$2/BuildInfo.swift"
            """
        return [
            .prebuildCommand(
                displayName: "Recording the commit of \(target.name)", executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", context.package.directoryURL.path, generated.path], outputFilesDirectory: generated)
        ]
    }
}
