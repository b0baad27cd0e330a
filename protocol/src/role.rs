//! Who a token speaks for. The server stamps it on every request; the device keeps the role it
//! was enrolled with to know what it may write (safety acknowledgements: care team only).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    Professional,
    Outreach,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Citizen,
        Role::Professional,
        Role::Outreach,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Professional => "professional",
            Role::Outreach => "outreach",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Professionals and outreach workers read other people's records (every read is audited)
    /// and are the care team that may write care-team-only kinds.
    pub fn reads_others(self) -> bool {
        matches!(self, Role::Professional | Role::Outreach)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| {
            format!("unknown role {s:?}; one of citizen, professional, outreach, admin")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_reads_back_from_its_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("nurse"
            .parse::<Role>()
            .unwrap_err()
            .contains("professional"));
        assert_eq!(
            Role::ALL.iter().filter(|r| r.reads_others()).count(),
            2,
            "professional and outreach"
        );
    }
}
