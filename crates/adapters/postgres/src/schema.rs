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

diesel::joinable!(sessions -> members (member_id));
diesel::joinable!(used_refresh_tokens -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(members, sessions, used_refresh_tokens);
