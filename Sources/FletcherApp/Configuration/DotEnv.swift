import Foundation

/// Reads a `.env` file: `KEY=value` lines, optionally prefixed with `export`, `#` comments, and
/// values in single quotes (literal, may span lines, as in the original Fletcher's README) or double
/// quotes (may span lines, with `\n`, `\"` and `\\` escapes).
///
/// Kept instead of swift-configuration's `.env` reader (`EnvironmentVariablesProvider(environmentFilePath:)`),
/// which splits the file at every newline and keeps quotes, `export` and trailing comments as part
/// of the value: a multi-line `REMOTE_APIS='[…]'` would be cut at its first line, and a line that is
/// not `KEY=value` skipped instead of reported. The values read here go to swift-configuration's
/// `EnvironmentVariablesProvider` like the process environment's (`AppConfiguration.load`).
public enum DotEnv {
    public static func parse(_ text: String) throws -> [String: String] {
        var values: [String: String] = [:]
        var characters = Substring(text)
        var lineNumber = 1
        while !characters.isEmpty {
            let line = characters.prefix { $0 != "\n" }
            var rest = line.drop { $0 == " " || $0 == "\t" }
            if rest.isEmpty || rest.hasPrefix("#") {
                characters = characters.dropFirst(line.count).dropFirst()
                lineNumber += 1
                continue
            }
            if rest.hasPrefix("export ") { rest = rest.dropFirst("export ".count).drop { $0 == " " } }
            guard let equals = rest.firstIndex(of: "=") else {
                throw ConfigurationError(".env", "line \(lineNumber) is not KEY=value")
            }
            let key = rest[..<equals].trimmingCharacters(in: " \t")
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigurationError(".env", "line \(lineNumber) has an invalid name '\(key)'")
            }
            var value = characters[characters.index(after: equals)...].drop { $0 == " " || $0 == "\t" }
            if let quote = value.first, quote == "'" || quote == "\"" {
                value = value.dropFirst()
                var parsed = ""
                var closed = false
                while let character = value.first {
                    value = value.dropFirst()
                    if character == quote {
                        closed = true
                        break
                    }
                    if character == "\n" { lineNumber += 1 }
                    if quote == "\"", character == "\\", let escaped = value.first {
                        value = value.dropFirst()
                        parsed.append(escaped == "n" ? "\n" : escaped == "t" ? "\t" : escaped)
                    } else {
                        parsed.append(character)
                    }
                }
                guard closed else {
                    throw ConfigurationError(".env", "the quoted value of \(key) is never closed")
                }
                values[key] = parsed
                characters = value.drop { $0 != "\n" }.dropFirst()
            } else {
                let raw = value.prefix { $0 != "\n" }
                let withoutComment = raw.range(of: " #").map { raw[..<$0.lowerBound] } ?? raw
                values[key] = withoutComment.trimmingCharacters(in: " \t\r")
                characters = value.dropFirst(raw.count).dropFirst()
            }
            lineNumber += 1
        }
        return values
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
