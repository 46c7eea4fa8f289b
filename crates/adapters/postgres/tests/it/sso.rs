//! Single sign-on's identity repository: the events of a first login that creates a member.

use onboard_members::ports::SignInDraft;
use onboard_postgres::PgIdentityRepository;
use onboard_postgres::testing::TestDatabase;
use onboard_sso::ports::IdentityRepository;
use onboard_sso::{ProviderIdentity, ProviderName};

use crate::{now, phone, signing_up, stored_events};

fn identity(subject: &str) -> ProviderIdentity {
    ProviderIdentity {
        provider: ProviderName::parse("sparcs").expect("a provider name"),
        subject: subject.to_owned(),
        verified_phone: Some(phone(1)),
        verified_email: None,
        first_name: None,
        last_name: None,
    }
}

/// A draft with a fresh member id, referral code and session, and its sign-up events.
fn draft() -> SignInDraft {
    let request = signing_up(&phone(1), now());
    SignInDraft {
        new_member_id: request.new_member_id,
        new_referral_code: request.new_referral_code,
        session: request.session,
        personal_workspace: request.personal_workspace,
        created_events: request.created_events,
        now: request.now,
    }
}

#[tokio::test]
async fn a_first_sso_login_stores_the_sign_up_events_and_a_later_login_none() {
    let db = TestDatabase::new().await;
    let identities = PgIdentityRepository::new(db.pool());
    let first = draft();

    let created = identities.sign_in(&identity("s-1"), &first).await.expect("signs up");
    let again = identities.sign_in(&identity("s-1"), &draft()).await.expect("signs in");

    assert!(created.created);
    assert!(!again.created);
    assert_eq!(again.member.id, created.member.id);
    assert_eq!(stored_events(&db.pool()).await, first.created_events);
}
