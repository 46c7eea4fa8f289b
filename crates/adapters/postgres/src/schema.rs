//! The tables of `migrations/`, for diesel's query builder. Written by hand; keep in step with
//! the migrations.

diesel::table! {
    members (id) {
        id -> Uuid,
        phone -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        email -> Nullable<Text>,
        referral_code -> Text,
        referred_by -> Nullable<Uuid>,
        referred_at -> Nullable<Timestamptz>,
        current_group_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        ref_parent -> Nullable<Uuid>,
        ref_rank -> SmallInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        member_id -> Uuid,
        refresh_hash -> Bytea,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        kind -> Text,
    }
}

diesel::table! {
    used_refresh_tokens (hash) {
        hash -> Bytea,
        session_id -> Uuid,
        rotated_to -> Bytea,
        used_at -> Timestamptz,
    }
}

diesel::table! {
    groups (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        approval_required -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    group_roles (group_id, name) {
        group_id -> Uuid,
        name -> Text,
        permissions -> Array<Text>,
    }
}

diesel::table! {
    group_members (group_id, member_id) {
        group_id -> Uuid,
        member_id -> Uuid,
        role -> Text,
        status -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::table! {
    invites (id) {
        id -> Uuid,
        group_id -> Uuid,
        name -> Text,
        phone -> Nullable<Text>,
        email -> Nullable<Text>,
        role -> Text,
        status -> Text,
        invited_by -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_by -> Nullable<Uuid>,
        accepted_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(sessions -> members (member_id));
diesel::joinable!(used_refresh_tokens -> sessions (session_id));
diesel::joinable!(members -> groups (current_group_id));
diesel::joinable!(group_roles -> groups (group_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> members (member_id));
diesel::joinable!(invites -> groups (group_id));

diesel::allow_tables_to_appear_in_same_query!(
    members,
    sessions,
    used_refresh_tokens,
    groups,
    group_roles,
    group_members,
    invites
);
