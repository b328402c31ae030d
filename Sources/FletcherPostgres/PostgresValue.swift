
/// PostgreSQL-specific value handling.
enum PostgresValue {
    /// Escapes LIKE's wildcards (and its escape character) so the text matches literally.
    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
