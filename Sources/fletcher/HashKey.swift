import ArgumentParser
import FletcherHTTP
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct HashKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print a bcrypt hash of a service key, for REMOTE_APIS.",
        discussion: """
            Reads the key from standard input when it is not a terminal (one trailing newline is
            dropped), otherwise prompts for it twice without echo. Example:
              printf %s 'my key' | fletcher hash-key
            """)

    @Option(help: "bcrypt cost factor (4–31); each step doubles the time a login takes.")
    var cost: UInt8 = 10

    func validate() throws {
        guard (4...31).contains(cost) else { throw ValidationError("--cost must be from 4 to 31") }
    }

    func run() async throws {
        let key: String
        if isatty(STDIN_FILENO) == 1 {
            let first = prompt("Key: ")
            guard prompt("Again: ") == first else { throw ValidationError("the two keys differ") }
            key = first
        } else {
            var text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
            key = text
        }
        guard !key.isEmpty else { throw ValidationError("the key is empty") }
        guard !key.utf8.contains(0) else { throw ValidationError("the key contains a NUL character") }
        print(try await BcryptVerifier(threads: 1).hash(key, cost: cost))
    }

    private func prompt(_ text: String) -> String {
        guard let pointer = getpass(text) else { return "" }
        return String(cString: pointer)
    }
}
