//! The server side of SASL DIGEST-MD5 (RFC 2831) as Java's SASL server
//! runs it for ZooKeeper: protocol `zookeeper`, server name (and realm)
//! `zk-sasl-md5`, quality of protection `auth` only (no integrity or
//! confidentiality layer: ZooKeeper uses none), `md5-sess`.
//!
//! Two rounds: the client's empty first token gets the challenge (realm,
//! nonce); its response is checked against the user's password and
//! answered with `rspauth`, which proves to the client that the server
//! knew the password too. Anything else fails the exchange.

use std::collections::BTreeMap;

use md5::{Digest as _, Md5};

use crate::hex::lower as lower_hex;

/// ZooKeeper's fixed server name for DIGEST-MD5 (`SecurityUtils`).
const SERVER_NAME: &str = "zk-sasl-md5";
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

use super::SaslUsers;

/// Where an exchange is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Started,
    Challenged,
    Done,
}

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug, Clone)]
pub struct DigestMd5 {
    nonce: String,
    state: State,
}

/// What a client's token comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the next.
    Challenge(Vec<u8>),
    /// Authenticated as `user`; send this last token.
    Success { token: Vec<u8>, user: String },
    /// The exchange failed, and why (for the log: the client is told only
    /// AuthFailed).
    Failure(String),
}

impl DigestMd5 {
    /// An exchange whose challenge carries a random nonce.
    pub fn start() -> DigestMd5 {
        let nonce: [u8; 24] = rand::random();
        DigestMd5::new(lower_hex(&nonce))
    }

    /// An exchange whose challenge carries `nonce`.
    fn new(nonce: String) -> DigestMd5 {
        DigestMd5 {
            nonce,
            state: State::Started,
        }
    }

    pub fn step(&mut self, token: &[u8], users: &SaslUsers) -> Step {
        match self.state {
            State::Started => {
                self.state = State::Challenged;
                Step::Challenge(
                    format!(
                        "realm=\"{SERVER_NAME}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,\
                         algorithm=md5-sess",
                        self.nonce
                    )
                    .into_bytes(),
                )
            }
            State::Challenged => {
                self.state = State::Done;
                match self.check(token, users) {
                    Ok(success) => success,
                    Err(reason) => Step::Failure(reason),
                }
            }
            State::Done => Step::Failure("a token after the exchange ended".into()),
        }
    }

    fn check(&self, token: &[u8], users: &SaslUsers) -> Result<Step, String> {
        let fields = directives(token)?;
        let field = |name: &str| -> Result<&[u8], String> {
            fields
                .get(name)
                .map(Vec::as_slice)
                .ok_or_else(|| format!("the response has no {name}"))
        };
        let text = |name: &str| -> Result<String, String> {
            String::from_utf8(field(name)?.to_vec()).map_err(|_| format!("{name} is not UTF-8"))
        };
        let user = text("username")?;
        let realm = fields
            .get("realm")
            .map_or(Ok(String::new()), |_| text("realm"))?;
        let nonce = field("nonce")?;
        let cnonce = field("cnonce")?;
        let nc = field("nc")?;
        let digest_uri = field("digest-uri")?;
        let response = field("response")?;
        let qop = fields.get("qop").map_or(&b"auth"[..], Vec::as_slice);
        if nonce != self.nonce.as_bytes() {
            return Err("the response names another nonce".into());
        }
        if nc != b"00000001" {
            return Err("the nonce count is not 1".into());
        }
        if qop != b"auth" {
            return Err(format!(
                "quality of protection {:?}: only auth is offered",
                String::from_utf8_lossy(qop)
            ));
        }
        if digest_uri != DIGEST_URI.as_bytes() {
            return Err(format!(
                "digest-uri {:?}, not {DIGEST_URI}",
                String::from_utf8_lossy(digest_uri)
            ));
        }
        let Some(password) = users.password(&user) else {
            return Err(format!("no user {user:?}"));
        };
        let mut key = Md5::new();
        key.update(java_8859_1(&user));
        key.update(b":");
        key.update(java_8859_1(&realm));
        key.update(b":");
        key.update(java_8859_1(password));
        let mut a1 = Md5::new();
        a1.update(key.finalize());
        a1.update(b":");
        a1.update(nonce);
        a1.update(b":");
        a1.update(cnonce);
        if let Some(authzid) = fields.get("authzid") {
            a1.update(b":");
            a1.update(authzid);
        }
        let ha1 = lower_hex(&a1.finalize());
        let digest = |a2: &[u8]| {
            let mut h = Md5::new();
            for part in [ha1.as_bytes(), nonce, nc, cnonce, qop] {
                h.update(part);
                h.update(b":");
            }
            h.update(lower_hex(&Md5::digest(a2)));
            lower_hex(&h.finalize())
        };
        let expected = digest(&[b"AUTHENTICATE:", digest_uri].concat());
        if !response.eq_ignore_ascii_case(expected.as_bytes()) {
            return Err(format!("wrong password for {user:?}"));
        }
        let proof = digest(&[b":", digest_uri].concat());
        Ok(Step::Success {
            token: format!("rspauth={proof}").into_bytes(),
            user,
        })
    }
}

/// Java's `DigestMD5Base.stringToByte_8859_1` with `charset=utf-8`: the
/// ISO 8859-1 bytes when every character fits, else UTF-8 (RFC 2831).
fn java_8859_1(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 0x100) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// `name=value` or `name="quoted value"` directives, comma-separated; a
/// directive given twice is an error (RFC 2831 allows none of the ones
/// checked here twice).
fn directives(token: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut at = 0;
    let skip_space = |at: &mut usize| {
        while token
            .get(*at)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
        {
            *at += 1;
        }
    };
    loop {
        skip_space(&mut at);
        if at >= token.len() {
            return Ok(out);
        }
        let start = at;
        while token.get(at).is_some_and(|b| *b != b'=') {
            at += 1;
        }
        let name = std::str::from_utf8(&token[start..at])
            .map_err(|_| "a directive name is not text".to_owned())?
            .trim()
            .to_ascii_lowercase();
        if at >= token.len() || name.is_empty() {
            return Err("a directive without a value".into());
        }
        at += 1;
        let mut value = Vec::new();
        if token.get(at) == Some(&b'"') {
            at += 1;
            loop {
                match token.get(at) {
                    Some(b'"') => {
                        at += 1;
                        break;
                    }
                    Some(b'\\') => {
                        at += 1;
                        match token.get(at) {
                            Some(&b) => value.push(b),
                            None => return Err("an unclosed quote".into()),
                        }
                    }
                    Some(&b) => value.push(b),
                    None => return Err("an unclosed quote".into()),
                }
                at += 1;
            }
        } else {
            while token.get(at).is_some_and(|b| *b != b',') {
                value.push(token[at]);
                at += 1;
            }
            while value.last().is_some_and(u8::is_ascii_whitespace) {
                value.pop();
            }
        }
        if out.insert(name.clone(), value).is_some() {
            return Err(format!("{name} given twice"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        SaslUsers::for_tests(&[("jaasuser", "jaas_password")])
    }

    /// A client's response as RFC 2831 computes it (the same steps as
    /// puresasl's, which kazoo uses, written out independently).
    fn client_response(user: &str, password: &str, nonce: &str, cnonce: &str) -> (Vec<u8>, String) {
        let md5 = |b: &[u8]| Md5::digest(b).to_vec();
        let key = md5(format!("{user}:{SERVER_NAME}:{password}").as_bytes());
        let a1 = [key.as_slice(), format!(":{nonce}:{cnonce}").as_bytes()].concat();
        let ha1 = lower_hex(&md5(&a1));
        let kd = |a2: &str| {
            lower_hex(&md5(format!(
                "{ha1}:{nonce}:00000001:{cnonce}:auth:{}",
                lower_hex(&md5(a2.as_bytes()))
            )
            .as_bytes()))
        };
        let response = kd(&format!("AUTHENTICATE:{DIGEST_URI}"));
        let token = format!(
            "qop=auth,realm=\"{SERVER_NAME}\",username=\"{user}\",nonce=\"{nonce}\",\
             cnonce=\"{cnonce}\",nc=00000001,digest-uri=\"{DIGEST_URI}\",response={response}"
        );
        (token.into_bytes(), kd(&format!(":{DIGEST_URI}")))
    }

    #[test]
    fn the_right_password_authenticates_and_the_server_proves_it_knew_it() {
        let mut server = DigestMd5::new("abc123".into());
        let Step::Challenge(challenge) = server.step(b"", &users()) else {
            panic!("no challenge");
        };
        let challenge = String::from_utf8(challenge).unwrap();
        assert!(challenge.contains("nonce=\"abc123\""), "{challenge}");
        assert!(challenge.contains("realm=\"zk-sasl-md5\""), "{challenge}");
        let (token, proof) = client_response("jaasuser", "jaas_password", "abc123", "xyz");
        assert_eq!(
            server.step(&token, &users()),
            Step::Success {
                token: format!("rspauth={proof}").into_bytes(),
                user: "jaasuser".into()
            }
        );
        assert!(matches!(server.step(b"", &users()), Step::Failure(_)));
    }

    #[test]
    fn a_wrong_password_an_unknown_user_or_another_nonce_fails() {
        for (user, password, nonce) in [
            ("jaasuser", "wrong", "n1"),
            ("nobody", "jaas_password", "n1"),
            ("jaasuser", "jaas_password", "another"),
        ] {
            let mut server = DigestMd5::new("n1".into());
            server.step(b"", &users());
            let (token, _) = client_response(user, password, nonce, "c");
            assert!(
                matches!(server.step(&token, &users()), Step::Failure(_)),
                "{user} {password} {nonce}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever a client sends, the exchange answers (a challenge,
        /// then a failure) and never panics.
        #[test]
        fn any_token_is_answered(first in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                 second in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut server = DigestMd5::new("n".into());
            proptest::prop_assert!(matches!(server.step(&first, &users()), Step::Challenge(_)));
            proptest::prop_assert!(matches!(server.step(&second, &users()), Step::Failure(_)));
        }
    }

    #[test]
    fn malformed_responses_fail_without_panicking() {
        for token in [
            &b"garbage"[..],
            b"username=\"unclosed",
            b"username=a,username=b",
            b"=x",
            b"",
            &[0xff, 0xfe, b'=', b'"'],
        ] {
            let mut server = DigestMd5::new("n".into());
            server.step(b"", &users());
            assert!(matches!(server.step(token, &users()), Step::Failure(_)));
        }
    }
}
