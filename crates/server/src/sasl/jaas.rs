//! The JAAS login configuration file, as far as a ZooKeeper server reads
//! it: the section named `Server` (`zookeeper.sasl.serverconfig`), whose
//! `org.apache.zookeeper.server.auth.DigestLoginModule` entry lists the
//! users as `user_<name>="<password>"` options.
//!
//! The grammar (Java's `ConfigFile`): sections `Name { entries };`, an
//! entry `LoginModuleClass flag option=value ... ;`, values quoted or not,
//! `//` and `/* */` comments.

use std::collections::BTreeMap;
use std::path::Path;

/// The module whose users Conclave takes.
const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// Why a JAAS file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    #[error("cannot read the JAAS file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the JAAS file {path} is malformed: {reason}")]
    Syntax { path: String, reason: String },
    #[error(
        "the JAAS file {path}'s {section} section uses {module}: Conclave supports only \
         {DIGEST_LOGIN_MODULE} (SASL DIGEST-MD5); Kerberos is not supported"
    )]
    Unsupported {
        path: String,
        section: String,
        module: String,
    },
}

/// The users SASL clients may log in as: name → password.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslUsers(BTreeMap<String, String>);

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl SaslUsers {
    /// The users of `section` in the file at `path`; `None` when the file
    /// has no such section (SASL is then off, as in ZooKeeper).
    pub fn read(path: &Path, section: &str) -> Result<Option<SaslUsers>, JaasError> {
        let text = std::fs::read_to_string(path).map_err(|source| JaasError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SaslUsers::parse(&text, section).map_err(|e| match e {
            Parsed::Syntax(reason) => JaasError::Syntax {
                path: path.display().to_string(),
                reason,
            },
            Parsed::Module(module) => JaasError::Unsupported {
                path: path.display().to_string(),
                section: section.to_owned(),
                module,
            },
        })
    }

    fn parse(text: &str, section: &str) -> Result<Option<SaslUsers>, Parsed> {
        let tokens = tokenize(text)?;
        let mut at = 0;
        let mut found = None;
        while at < tokens.len() {
            let Token::Word(name) = &tokens[at] else {
                return Err(Parsed::Syntax("expected a section name".into()));
            };
            at += 1;
            expect(&tokens, &mut at, &Token::Open)?;
            let mut entries = Vec::new();
            while tokens.get(at) != Some(&Token::Close) {
                entries.push(entry(&tokens, &mut at)?);
            }
            at += 1;
            expect(&tokens, &mut at, &Token::Semicolon)?;
            if name == section {
                found = Some(entries);
            }
        }
        let Some(entries) = found else {
            return Ok(None);
        };
        let mut users = BTreeMap::new();
        for (module, options) in entries {
            if module != DIGEST_LOGIN_MODULE {
                return Err(Parsed::Module(module));
            }
            for (key, value) in options {
                if let Some(user) = key.strip_prefix("user_") {
                    users.insert(user.to_owned(), value);
                }
            }
        }
        Ok(Some(SaslUsers(users)))
    }

    #[cfg(test)]
    pub(crate) fn for_tests(users: &[(&str, &str)]) -> SaslUsers {
        SaslUsers(
            users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
        )
    }

    /// The password of `user`.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.0.get(user).map(String::as_str)
    }
}

enum Parsed {
    Syntax(String),
    Module(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
}

type Entry = (String, Vec<(String, String)>);

/// `Class flag key=value ... ;`
fn entry(tokens: &[Token], at: &mut usize) -> Result<Entry, Parsed> {
    let Some(Token::Word(module)) = tokens.get(*at) else {
        return Err(Parsed::Syntax("expected a login module class".into()));
    };
    *at += 1;
    let Some(Token::Word(_flag)) = tokens.get(*at) else {
        return Err(Parsed::Syntax(format!(
            "expected a control flag after {module}"
        )));
    };
    *at += 1;
    let mut options = Vec::new();
    loop {
        match tokens.get(*at) {
            Some(Token::Semicolon) => {
                *at += 1;
                return Ok((module.clone(), options));
            }
            Some(Token::Word(key)) => {
                *at += 1;
                expect(tokens, at, &Token::Equals)?;
                let value = match tokens.get(*at) {
                    Some(Token::Word(v) | Token::Quoted(v)) => v.clone(),
                    _ => return Err(Parsed::Syntax(format!("{key} has no value"))),
                };
                *at += 1;
                options.push((key.clone(), value));
            }
            _ => {
                return Err(Parsed::Syntax(format!(
                    "{module}'s options do not end with ';'"
                )));
            }
        }
    }
}

fn expect(tokens: &[Token], at: &mut usize, wanted: &Token) -> Result<(), Parsed> {
    if tokens.get(*at) == Some(wanted) {
        *at += 1;
        Ok(())
    } else {
        Err(Parsed::Syntax(format!(
            "expected {wanted:?}, found {:?}",
            tokens.get(*at)
        )))
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, Parsed> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' => tokens.push(Token::Open),
            '}' => tokens.push(Token::Close),
            ';' => tokens.push(Token::Semicolon),
            '=' => tokens.push(Token::Equals),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err(Parsed::Syntax("an unclosed comment".into())),
                    }
                }
            }
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err(Parsed::Syntax("an unclosed quote".into())),
                        },
                        Some(c) => value.push(c),
                        None => return Err(Parsed::Syntax("an unclosed quote".into())),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};=\"".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file kazoo's test harness writes for ZooKeeper.
    const KAZOO: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"#;

    #[test]
    fn reads_the_digest_users_of_the_server_section() {
        let users = SaslUsers::parse(KAZOO, "Server").ok().flatten().unwrap();
        assert_eq!(users.password("jaasuser"), Some("jaas_password"));
        assert_eq!(users.password("super"), Some("super_secret"));
        assert_eq!(users.password("nobody"), None);
        assert!(!format!("{users:?}").contains("secret"));
    }

    #[test]
    fn other_sections_comments_and_an_empty_file() {
        let text = format!(
            "// a comment\nClient {{ org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"bob\" password=\"x\"; }};\n/* more */ {KAZOO}"
        );
        let users = SaslUsers::parse(&text, "Server").ok().flatten().unwrap();
        assert_eq!(users.password("jaasuser"), Some("jaas_password"));
        assert!(matches!(SaslUsers::parse("", "Server"), Ok(None)));
        assert!(matches!(SaslUsers::parse(KAZOO, "Other"), Ok(None)));
    }

    #[test]
    fn kerberos_and_broken_files_are_refused() {
        let kerberos = "Server { com.sun.security.auth.module.Krb5LoginModule required \
                        useKeyTab=true keyTab=\"/k\" principal=\"zookeeper/h@R\"; };";
        assert!(matches!(
            SaslUsers::parse(kerberos, "Server"),
            Err(Parsed::Module(m)) if m.contains("Krb5")
        ));
        for broken in [
            "Server { x required a=\"b\" ",
            "Server { x required a= ; };",
            "Server { x required \"unclosed ; };",
        ] {
            assert!(
                matches!(SaslUsers::parse(broken, "Server"), Err(Parsed::Syntax(_))),
                "{broken}"
            );
        }
    }
}
