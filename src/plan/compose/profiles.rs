//! Profiles: a service that lists `profiles:` is part of the project only
//! when one of them is enabled; `*` enables every profile.

/// The enabled profiles: `--all-profiles`, else the explicit ones, else
/// `COMPOSE_PROFILES` (comma-separated).
pub fn enabled(all: bool, explicit: &[String], from_env: Option<&str>) -> Vec<String> {
    if all {
        return vec!["*".to_owned()];
    }
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    from_env
        .map(|value| value.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default()
}

/// True when a service with `service_profiles` is part of the project.
pub fn is_active(service_profiles: &[String], enabled: &[String]) -> bool {
    service_profiles.is_empty()
        || enabled
            .iter()
            .any(|p| p == "*" || service_profiles.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn services_without_profiles_are_always_active() {
        assert!(is_active(&[], &[]));
        assert!(!is_active(&strings(&["debug"]), &[]));
        assert!(is_active(&strings(&["debug", "ops"]), &strings(&["ops"])));
        assert!(is_active(&strings(&["debug"]), &strings(&["*"])));
    }

    #[test]
    fn explicit_profiles_beat_the_environment() {
        assert_eq!(enabled(false, &strings(&["a"]), Some("b")), strings(&["a"]));
        assert_eq!(enabled(false, &[], Some(" b , c")), strings(&["b", "c"]));
        assert_eq!(enabled(true, &strings(&["a"]), None), strings(&["*"]));
        assert!(enabled(false, &[], None).is_empty());
    }
}
