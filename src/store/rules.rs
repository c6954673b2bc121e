//! What a revocation means, written once: the [`TokenStore`] of every [`Backend`].
//!
//! The backend carries out each change atomically and reports its [`Facts`]; this module
//! decides the outcome a caller sees, counts what a bulk revocation covered, and turns every
//! change into its one [`RevocationEvent`], emitted here and nowhere else on this node.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::SystemTime};

use crate::events::{Initiator, RevocationEvent, Revoked};

use super::{
    backend::{Applied, Backend, Bulk, CutOff, Facts, GrantState, GrantTarget, TokenRule},
    Events, GrantId, IssueError, OwnerGrants, RevocationOutcome, RevocationRequest,
    RevocationScope, StoreError, TokenHash, TokenKind, TokenRecord, TokenStore,
};

/// Who asked, as the shared backends record it beside a change: `c:<client id>`,
/// `o:<owner>`, `a:<admin id>` or `s` (the system).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn initiator_code(by: &Initiator) -> String {
    match by {
        Initiator::Client(id) => format!("c:{id}"),
        Initiator::Owner(name) => format!("o:{name}"),
        Initiator::Admin(id) => format!("a:{id}"),
        Initiator::System => "s".to_owned(),
    }
}

/// The initiator of an [`initiator_code`]; anything else is the system.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn initiator_of(code: &str) -> Initiator {
    match code.split_once(':') {
        Some(("c", id)) => Initiator::Client(id.into()),
        Some(("o", name)) => Initiator::Owner(name.into()),
        Some(("a", id)) => Initiator::Admin(id.into()),
        _ => Initiator::System,
    }
}

/// The event of a token's or a grant's revocation.
///
/// `token` names the token (with its kind) when it alone was revoked.
pub(crate) fn change_event(
    facts: &Facts,
    token: Option<(TokenHash, TokenKind)>,
    jti: Option<&str>,
    initiator: Initiator,
    at: SystemTime,
) -> RevocationEvent {
    let revoked = match (facts.scope, token) {
        (RevocationScope::Token, Some((token, kind))) => Revoked::Token {
            token,
            kind,
            grant: facts.grant,
        },
        _ => Revoked::Grant { grant: facts.grant },
    };
    RevocationEvent {
        revoked,
        client_id: facts.client_id.clone(),
        jti: jti.map(Into::into),
        subject: facts.owner.clone(),
        initiator,
        at,
        expires_at: Some(facts.expires_at),
        relayed: false,
    }
}

/// The event of a bulk revocation of `scope`.
pub(crate) fn bulk_event(scope: Bulk<'_>, initiator: Initiator, at: SystemTime) -> RevocationEvent {
    let (revoked, client_id, subject) = match scope {
        Bulk::Subject(name) => (Revoked::Subject, None, Some(Arc::from(name))),
        Bulk::Client(name) => (Revoked::Client, Some(Arc::from(name)), None),
    };
    RevocationEvent {
        revoked,
        client_id,
        jti: None,
        subject,
        initiator,
        at,
        expires_at: None,
        relayed: false,
    }
}

fn emit_grants(events: &Events, revoked: &[Facts], by: &Initiator, at: SystemTime) {
    if events.is_observed() {
        for facts in revoked {
            events.emit(change_event(facts, None, None, by.clone(), at));
        }
    }
}

/// Writes the cut-off, then counts, a page at a time, the grants it revoked; emits its event
/// when it revoked any.
async fn revoke_bulk<B: Backend>(
    backend: &B,
    scope: Bulk<'_>,
    by: Initiator,
) -> Result<usize, StoreError> {
    let Some(cut) = backend.cut_off(scope, &by).await? else {
        return Ok(0);
    };
    let revoked = count(backend, scope, &cut).await?;
    if revoked > 0 {
        let events = Backend::events(backend);
        events.emit(bulk_event(scope, by, backend.now()));
    }
    Ok(revoked)
}

async fn count<B: Backend>(
    backend: &B,
    scope: Bulk<'_>,
    cut: &CutOff,
) -> Result<usize, StoreError> {
    let now = backend.now();
    let mut revoked = 0;
    let mut cursor = None;
    loop {
        let page = backend.grants(scope, cursor).await?;
        revoked += page
            .grants
            .iter()
            .filter(|(_, grant)| cut.counts(grant, scope, now))
            .count();
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(revoked),
        }
    }
}

impl<B: Backend> TokenStore for B {
    fn events(&self) -> &Events {
        Backend::events(self)
    }

    async fn issue(&self, token: TokenHash, record: TokenRecord) -> Result<(), IssueError> {
        match self.register(token, record).await? {
            true => Ok(()),
            false => Err(IssueError::GrantRevoked),
        }
    }

    async fn inspect(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let now = self.now();
        Ok(self
            .lookup(token)
            .await?
            .filter(|held| held.is_active(now))
            .map(|held| held.record))
    }

    async fn revoke(
        &self,
        token: &TokenHash,
        request: RevocationRequest<'_>,
    ) -> Result<RevocationOutcome, StoreError> {
        let events = Backend::events(self);
        let rule = TokenRule {
            client_id: request.client_id,
            access_token_scope: request.access_token_scope,
            now: self.now(),
            jti: request.jti,
            report: events.is_observed(),
        };
        Ok(match self.revoke_token(token, rule).await? {
            Applied::NotActive => RevocationOutcome::NotActive,
            Applied::IssuedToAnotherClient => RevocationOutcome::IssuedToAnotherClient,
            Applied::Revoked { kind, facts } => {
                if rule.report {
                    let by = Initiator::Client(request.client_id.into());
                    let token = Some((*token, kind));
                    events.emit(change_event(&facts, token, request.jti, by, self.now()));
                }
                RevocationOutcome::Revoked {
                    kind,
                    scope: facts.scope,
                }
            }
        })
    }

    async fn revoke_grant(&self, grant: GrantId) -> Result<(), StoreError> {
        let now = self.now();
        let revoked = self
            .revoke_grants(GrantTarget::One(grant), &Initiator::System, now)
            .await?;
        emit_grants(Backend::events(self), &revoked, &Initiator::System, now);
        Ok(())
    }

    async fn revoke_client_for_owner(
        &self,
        owner: &str,
        client_id: &str,
        by: Initiator,
    ) -> Result<usize, StoreError> {
        let now = self.now();
        let target = GrantTarget::OwnerClient { owner, client_id };
        let revoked = self.revoke_grants(target, &by, now).await?;
        emit_grants(Backend::events(self), &revoked, &by, now);
        Ok(revoked.len())
    }

    async fn revoke_subject(&self, subject: &str, by: Initiator) -> Result<usize, StoreError> {
        revoke_bulk(self, Bulk::Subject(subject), by).await
    }

    async fn revoke_client(&self, client_id: &str, by: Initiator) -> Result<usize, StoreError> {
        revoke_bulk(self, Bulk::Client(client_id), by).await
    }

    fn history(&self) -> impl Future<Output = Result<Vec<RevocationEvent>, StoreError>> + Send {
        Backend::history(self)
    }

    async fn grant_state(&self, token: &TokenHash) -> Result<Option<GrantState>, StoreError> {
        Ok(self.lookup(token).await?.map(|held| held.grant))
    }

    async fn clients_of_owner(&self, owner: &str) -> Result<Vec<OwnerGrants>, StoreError> {
        let now = self.now();
        let mut counts: BTreeMap<Arc<str>, usize> = BTreeMap::new();
        let mut cursor = None;
        loop {
            let page = self.grants(Bulk::Subject(owner), cursor).await?;
            for (client, grant) in page.grants {
                if grant.is_live(now) {
                    *counts.entry(client).or_default() += 1;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(counts
            .into_iter()
            .map(|(client_id, grants)| OwnerGrants { client_id, grants })
            .collect())
    }
}
