//! Users and sessions.

use crate::fixtures::*;
use remine_domain::Role;
use remine_domain::ports::{AuditLog, StoreError, UserStore};
use remine_store::Db;

async fn a_user_is_added_and_found_as_stored(db: Db) {
    let anna = user("anna.k", Role::Engineer);
    db.add_user(&anna, event("user.add", "anna.k"))
        .await
        .unwrap();
    assert_eq!(db.user(&user_name("anna.k")).await.unwrap(), Some(anna));
    assert_eq!(db.user(&user_name("bob")).await.unwrap(), None);
}

async fn a_duplicate_user_is_refused_and_nothing_is_written(db: Db) {
    db.add_user(&user("anna.k", Role::Engineer), event("user.add", "anna.k"))
        .await
        .unwrap();
    let again = db
        .add_user(&user("anna.k", Role::Admin), event("user.add", "anna.k"))
        .await;
    assert_eq!(
        again,
        Err(StoreError::Conflict("user anna.k already exists".into()))
    );
    let kept = db.user(&user_name("anna.k")).await.unwrap().unwrap();
    assert_eq!(kept.role, Role::Engineer);
    assert_eq!(db.entries(0, 10).await.unwrap().len(), 1);
}

async fn a_session_finds_its_user_until_it_expires(db: Db) {
    let op = user("op1", Role::Operator);
    db.add_user(&op, event("user.add", "op1")).await.unwrap();
    db.create_session("hash-1", &op.name, at(100))
        .await
        .unwrap();
    assert_eq!(
        db.session_user("hash-1", at(99)).await.unwrap(),
        Some(op.clone())
    );
    assert_eq!(db.session_user("hash-1", at(100)).await.unwrap(), None);
    assert_eq!(db.session_user("hash-2", at(0)).await.unwrap(), None);
}

async fn a_deleted_session_finds_nobody(db: Db) {
    let op = user("op1", Role::Operator);
    db.add_user(&op, event("user.add", "op1")).await.unwrap();
    db.create_session("hash-1", &op.name, at(100))
        .await
        .unwrap();
    db.delete_session("hash-1").await.unwrap();
    assert_eq!(db.session_user("hash-1", at(0)).await.unwrap(), None);
    db.delete_session("hash-1").await.unwrap();
}

async fn expired_sessions_are_purged_and_live_ones_kept(db: Db) {
    let op = user("op1", Role::Operator);
    db.add_user(&op, event("user.add", "op1")).await.unwrap();
    db.create_session("old", &op.name, at(10)).await.unwrap();
    db.create_session("live", &op.name, at(1000)).await.unwrap();
    assert_eq!(db.delete_expired_sessions(at(10)).await.unwrap(), 1);
    assert_eq!(db.session_user("live", at(11)).await.unwrap(), Some(op));
}

async fn sessions_for_unknown_users_or_reused_hashes_are_refused(db: Db) {
    let refused = db.create_session("h", &user_name("ghost"), at(100)).await;
    assert_eq!(refused, Err(StoreError::NotFound("user ghost".into())));
    let op = user("op1", Role::Operator);
    db.add_user(&op, event("user.add", "op1")).await.unwrap();
    db.create_session("h", &op.name, at(100)).await.unwrap();
    let again = db.create_session("h", &op.name, at(200)).await;
    assert_eq!(
        again,
        Err(StoreError::Conflict(
            "a session with this token hash already exists (user op1)".into()
        ))
    );
}

on_both_backends!(
    a_user_is_added_and_found_as_stored,
    a_duplicate_user_is_refused_and_nothing_is_written,
    a_session_finds_its_user_until_it_expires,
    a_deleted_session_finds_nobody,
    expired_sessions_are_purged_and_live_ones_kept,
    sessions_for_unknown_users_or_reused_hashes_are_refused,
);
