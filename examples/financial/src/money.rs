//! Amounts of money: whole cents inside, decimal numbers (`12.34`) in JSON.

use std::ops::{Add, Sub};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in hundredths of the currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub i64);

impl Cents {
    /// Nothing.
    pub const ZERO: Cents = Cents(0);

    /// The amount nearest to `amount` units, or `None` when it is not a finite number.
    #[must_use]
    pub fn from_units(amount: f64) -> Option<Self> {
        #[allow(clippy::cast_possible_truncation)]
        let cents = (amount * 100.0).round() as i64;
        amount.is_finite().then_some(Cents(cents))
    }

    /// `rate` percent of this amount, rounded half away from zero.
    #[must_use]
    pub fn percent(self, rate: f64) -> Self {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let cents = (self.0 as f64 * rate / 100.0).round() as i64;
        Cents(cents)
    }

    /// The amount in units, for JSON.
    #[must_use]
    pub fn units(self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let units = self.0 as f64 / 100.0;
        units
    }
}

impl Add for Cents {
    type Output = Cents;
    fn add(self, other: Cents) -> Cents {
        Cents(self.0 + other.0)
    }
}

impl Sub for Cents {
    type Output = Cents;
    fn sub(self, other: Cents) -> Cents {
        Cents(self.0 - other.0)
    }
}

impl std::ops::Neg for Cents {
    type Output = Cents;
    fn neg(self) -> Cents {
        Cents(-self.0)
    }
}

impl Serialize for Cents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.units())
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let units = f64::deserialize(deserializer)?;
        Cents::from_units(units).ok_or_else(|| serde::de::Error::custom("not a finite amount"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_to_the_cent_and_tax_rounds_half_up() {
        assert_eq!(Cents::from_units(19.999), Some(Cents(2000)));
        assert_eq!(Cents(1050).percent(19.0), Cents(200));
        assert_eq!(Cents(100_000).percent(21.0), Cents(21_000));
        assert_eq!(serde_json::to_string(&Cents(123_456)).unwrap(), "1234.56");
    }
}
