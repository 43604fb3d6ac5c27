//! Sign-in and sign-up limits over the real store (members and staff, from the shared
//! fixture that holds both services): a stranger's wrong guesses from one address never
//! lock the member out, many addresses together reach the account's larger budget, and
//! sign-ups are limited per address before any password is hashed.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Fixture, PASSWORD};
use custodia_core::{BirthDate, Clock, Password, StaffRole, Username};
use custodia_governance::GovernanceError;
use custodia_service::ServiceError;

fn addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, n))
}

async fn login(f: &Fixture, password: &str, from: IpAddr) -> Result<(), ServiceError> {
    f.service
        .login(
            "alice",
            Password::parse(password.into()).unwrap(),
            "d",
            from,
        )
        .await
        .map(drop)
}

#[tokio::test]
async fn a_stranger_cannot_lock_a_member_out() {
    let f = Fixture::new().await;
    f.user("alice").await;
    let stranger = addr(66);
    let mut limited = 0;
    for _ in 0..30 {
        match login(&f, "not her password", stranger).await {
            Err(ServiceError::BadCredentials) => {}
            Err(ServiceError::RateLimited { .. }) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(limited, 20, "ten guesses per account from one address");
    // The member, from her own address, signs in at once.
    login(&f, PASSWORD, addr(7))
        .await
        .expect("the member is not locked out");
}

#[tokio::test]
async fn many_addresses_together_reach_the_accounts_larger_budget() {
    let f = Fixture::new().await;
    f.user("alice").await;
    let mut limited = false;
    // 10 addresses × 10 guesses spend the account's 100 (one went to `user()`).
    'outer: for n in 0..12u8 {
        for _ in 0..10 {
            if let Err(ServiceError::RateLimited { .. }) =
                login(&f, "not her password", addr(n)).await
            {
                limited = true;
                break 'outer;
            }
        }
    }
    assert!(limited, "a spread-out guessing attack still meets a limit");
    f.clock.advance(Duration::from_secs(300));
    login(&f, PASSWORD, addr(200)).await.expect("refilled");
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_before_hashing() {
    let f = Fixture::new().await;
    let today = f.clock.now().to_datetime().date();
    let register = |name: String, from| {
        f.service.register(
            Username::parse(&name).unwrap(),
            Password::parse(PASSWORD.into()).unwrap(),
            BirthDate::parse("1990-01-01", today).unwrap(),
            from,
        )
    };
    for i in 0..20 {
        register(format!("user{i}"), addr(1)).await.unwrap();
    }
    assert!(matches!(
        register("user20".into(), addr(1)).await,
        Err(ServiceError::RateLimited { .. })
    ));
    register("other".into(), addr(2))
        .await
        .expect("another address signs up");
    f.clock.advance(Duration::from_secs(3600));
    register("user21".into(), addr(1))
        .await
        .expect("an hour later");
}

#[tokio::test]
async fn a_stranger_cannot_lock_a_staff_member_out() {
    let f = Fixture::new().await;
    f.founders().await;
    for _ in 0..10 {
        let _ = f
            .gov
            .sign_in(
                "admin",
                Password::parse("wrong password".into()).unwrap(),
                "000000",
                addr(66),
            )
            .await;
    }
    assert!(matches!(
        f.gov
            .sign_in(
                "admin",
                Password::parse("wrong password".into()).unwrap(),
                "000000",
                addr(66)
            )
            .await,
        Err(GovernanceError::Service(ServiceError::RateLimited { .. }))
    ));
    f.next_step();
    let creds = common::Creds {
        username: "admin".into(),
        password: PASSWORD.into(),
        totp_uri: f.founder_uri(StaffRole::Admin),
    };
    let code = f.code(&creds);
    f.gov
        .sign_in(
            "admin",
            Password::parse(PASSWORD.into()).unwrap(),
            &code,
            addr(7),
        )
        .await
        .expect("the admin, from their own address, is not locked out");
}
