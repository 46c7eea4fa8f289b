/// Declares a UUID v7 id newtype: `new` (time-ordered), `from_uuid`, `as_uuid`, `Default`,
/// `Display`, `FromStr`, `From<Uuid>`, and transparent serde. Other domain crates declare their
/// ids with it too (`onboard_kernel::id_type!(CardId);`); they need `serde` as a dependency.
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name($crate::__private::Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            pub fn new() -> Self {
                Self($crate::__private::Uuid::now_v7())
            }

            /// Wraps an id read back from storage.
            pub const fn from_uuid(id: $crate::__private::Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> $crate::__private::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::__private::uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::__private::Uuid::parse_str(s).map(Self)
            }
        }

        impl From<$crate::__private::Uuid> for $name {
            fn from(id: $crate::__private::Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Identifies a member.
    MemberId
);
id_type!(
    /// Identifies a sign-in session (one refresh-token chain).
    SessionId
);
id_type!(
    /// Identifies a group (workspace, company).
    GroupId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_uuid_v7() {
        let a = MemberId::new();
        let b = MemberId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn an_id_round_trips_through_its_text_form() {
        let a = SessionId::new();
        let parsed: SessionId = a.to_string().parse().expect("parses");
        assert_eq!(a, parsed);
        assert!("not-a-uuid".parse::<SessionId>().is_err());
    }
}
