//! The books of every company, in memory: accounts with balances, invoices numbered per
//! company, and the postings an invoice and a payment make. Every read and write names the
//! tenant and company it is for, taken from the verified context: one company's books are
//! unreachable from another's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// What an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// What the company owns (cash, receivables).
    Asset,
    /// What it owes (tax payable).
    Liability,
    /// The owners' stake.
    Equity,
    /// What it earns (sales).
    Income,
    /// What it spends.
    Expense,
}

/// One account of a company's chart of accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Account code, unique in the company, e.g. `1200`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: AccountKind,
    /// Balance in the company's currency.
    pub balance: Cents,
}

/// The accounts every company starts with, by code.
pub const DEFAULT_ACCOUNTS: [(&str, &str, AccountKind); 4] = [
    (CASH, "Cash", AccountKind::Asset),
    (RECEIVABLE, "Accounts receivable", AccountKind::Asset),
    (TAX_PAYABLE, "Tax payable", AccountKind::Liability),
    (SALES, "Sales", AccountKind::Income),
];

/// Where payments land.
pub const CASH: &str = "1000";
/// What customers owe.
pub const RECEIVABLE: &str = "1200";
/// Tax charged on invoices.
pub const TAX_PAYABLE: &str = "2200";
/// Invoiced revenue.
pub const SALES: &str = "4000";

/// Whether an invoice is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Not (fully) paid yet.
    Open,
    /// Paid in full.
    Paid,
}

/// An invoice as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// `{invoice_prefix}-{n}`, the company's n-th invoice.
    pub number: String,
    /// Who is billed.
    pub customer: String,
    /// What for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Before tax.
    pub subtotal: Cents,
    /// Tax rate applied, a fraction (0.19 = 19 %).
    pub tax_rate: f64,
    /// Tax charged.
    pub tax: Cents,
    /// Subtotal plus tax.
    pub total: Cents,
    /// Paid so far.
    pub paid: Cents,
    /// Open or paid.
    pub status: InvoiceStatus,
    /// Date issued (`YYYY-MM-DD`).
    pub issued_on: String,
    /// Date due: issued plus the payment terms.
    pub due_on: String,
}

/// One company's books.
#[derive(Debug, Default)]
pub struct Books {
    /// By code.
    pub accounts: BTreeMap<String, Account>,
    /// Oldest first.
    pub invoices: Vec<Invoice>,
}

impl Books {
    /// Creates the default accounts that are missing; gives back how many were created.
    pub fn open_default_accounts(&mut self) -> usize {
        let mut created = 0;
        for (code, name, kind) in DEFAULT_ACCOUNTS {
            if !self.accounts.contains_key(code) {
                let account = Account {
                    code: code.to_owned(),
                    name: name.to_owned(),
                    kind,
                    balance: Cents::ZERO,
                };
                self.accounts.insert(code.to_owned(), account);
                created += 1;
            }
        }
        created
    }

    /// Adds `amount` to an account's balance, opening the default accounts if needed.
    pub fn post(&mut self, code: &str, amount: Cents) {
        if !self.accounts.contains_key(code) {
            self.open_default_accounts();
        }
        if let Some(account) = self.accounts.get_mut(code) {
            account.balance = account.balance + amount;
        }
    }

    /// The next invoice number with `prefix`.
    #[must_use]
    pub fn next_number(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.invoices.len() + 1)
    }

    /// An invoice by number.
    pub fn invoice_mut(&mut self, number: &str) -> Option<&mut Invoice> {
        self.invoices.iter_mut().find(|i| i.number == number)
    }
}

/// Every company's books, keyed by (tenant, company).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    books: Arc<Mutex<HashMap<(String, String), Books>>>,
}

impl Ledger {
    /// Runs `f` on the books of `company` of `tenant` (empty books when new).
    pub fn with<T>(&self, tenant: &str, company: &str, f: impl FnOnce(&mut Books) -> T) -> T {
        let mut all = self.lock();
        let books = all
            .entry((tenant.to_owned(), company.to_owned()))
            .or_default();
        f(books)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Books>> {
        self.books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accounts_are_opened_once() {
        let mut books = Books::default();
        assert_eq!(books.open_default_accounts(), 4);
        assert_eq!(books.open_default_accounts(), 0);
        assert_eq!(books.accounts[RECEIVABLE].name, "Accounts receivable");
    }

    #[test]
    fn companies_of_two_tenants_have_separate_books() {
        let ledger = Ledger::default();
        ledger.with("acme", "main", |b| b.post(CASH, Cents(500)));
        let other = ledger.with("globex", "main", |b| b.accounts.len());
        assert_eq!(other, 0);
        let cash = ledger.with("acme", "main", |b| b.accounts[CASH].balance);
        assert_eq!(cash, Cents(500));
    }
}
