//! Who is calling and from where: the context every service call gets.

use crate::{AccountId, Region};

/// What kind of identity signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root credentials: the account itself.
    Root,
    /// An IAM user of the account.
    User { name: String },
}

/// The identity behind a request's access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key_id: String,
    pub kind: PrincipalKind,
}

impl Principal {
    /// The principal's IAM ARN in `account`, as `userIdentity.arn` shows it.
    pub fn arn(&self, account: &AccountId) -> String {
        match &self.kind {
            PrincipalKind::Root => format!("arn:aws:iam::{account}:root"),
            PrincipalKind::User { name } => format!("arn:aws:iam::{account}:user/{name}"),
        }
    }
}

/// Who is calling and from where: the account of the access key, the region of the SigV4
/// credential scope and the principal that signed.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub account: AccountId,
    pub region: Region,
    pub principal: Principal,
}

impl RequestContext {
    /// The caller's IAM principal ARN.
    pub fn principal_arn(&self) -> String {
        self.principal.arn(&self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns() {
        let account = AccountId::parse("123456789012").unwrap();
        let root = Principal {
            access_key_id: "AKIA1".into(),
            kind: PrincipalKind::Root,
        };
        assert_eq!(root.arn(&account), "arn:aws:iam::123456789012:root");
        let alice = Principal {
            access_key_id: "AKIA2".into(),
            kind: PrincipalKind::User {
                name: "alice".into(),
            },
        };
        assert_eq!(alice.arn(&account), "arn:aws:iam::123456789012:user/alice");
    }
}
