//! The books of every company, kept in the module's declared tables through the SDK's data
//! handle: accounts with balances (`financial_accounts`, sort key the account code), invoices
//! numbered per company (`financial_invoices`, sort key the number), and the postings an
//! invoice and a payment make. Every read and write goes through a handle bound to the tenant
//! and company of the verified context (or of the platform's hook call or event): one
//! company's books are unreachable from another's, and on AWS another tenant's rows are
//! out of reach of the credentials themselves.

use std::collections::BTreeMap;
use std::sync::Arc;

use plinth_module_sdk::ApiError;
use plinth_module_sdk::data::{Range, Table, Tables};
use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// The table of accounts (sort key `account_id` = the account's code).
pub const ACCOUNTS_TABLE: &str = "financial_accounts";
/// The table of invoices (sort key `invoice_id` = the invoice's number).
pub const INVOICES_TABLE: &str = "financial_invoices";

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
#[derive(Debug, Default, Clone, PartialEq)]
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

/// An invoice as its table holds it: with its place in the company's sequence.
#[derive(Debug, Serialize, Deserialize)]
struct StoredInvoice {
    seq: usize,
    #[serde(flatten)]
    invoice: Invoice,
}

/// Every company's books, in the module's tables.
#[derive(Debug, Clone)]
pub struct Ledger {
    tables: Tables,
    /// One change at a time in this process: a change reads the company's books and writes
    /// back what it changed. (Instances of the module on AWS do not share it: see the README.)
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl Ledger {
    /// The books in `tables` (the module's, from the environment or in memory for tests).
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Runs `f` on the books of `company` of `tenant` (empty books when new), then writes
    /// what it changed.
    ///
    /// # Errors
    /// What the data handle refuses or the backend fails with, as an [`ApiError`].
    pub async fn with<T>(
        &self,
        tenant: &str,
        company: &str,
        f: impl FnOnce(&mut Books) -> T,
    ) -> Result<T, ApiError> {
        let _one_at_a_time = self.writing.lock().await;
        let data = self.tables.for_tenant(tenant, Some(company));
        let (accounts, invoices) = (
            data.company_table(ACCOUNTS_TABLE)?,
            data.company_table(INVOICES_TABLE)?,
        );
        let before = load(&accounts, &invoices).await?;
        let mut books = before.clone();
        let result = f(&mut books);
        save(&before, &books, &accounts, &invoices).await?;
        Ok(result)
    }
}

async fn load(accounts: &Table, invoices: &Table) -> Result<Books, ApiError> {
    let accounts: Vec<Account> = accounts.query(Range::All).await?;
    let mut stored: Vec<StoredInvoice> = invoices.query(Range::All).await?;
    stored.sort_by_key(|s| s.seq);
    Ok(Books {
        accounts: accounts.into_iter().map(|a| (a.code.clone(), a)).collect(),
        invoices: stored.into_iter().map(|s| s.invoice).collect(),
    })
}

/// Writes what changed: invoices first, so that a new number another instance took meanwhile
/// (a 409) leaves the accounts as they were.
async fn save(
    before: &Books,
    after: &Books,
    accounts: &Table,
    invoices: &Table,
) -> Result<(), ApiError> {
    for (index, invoice) in after.invoices.iter().enumerate() {
        let stored = StoredInvoice {
            seq: index + 1,
            invoice: invoice.clone(),
        };
        match before.invoices.get(index) {
            Some(was) if was == invoice => {}
            Some(_) => invoices.put(&invoice.number, &stored).await?,
            // A new number is taken in one atomic step: another instance may have issued it.
            None if !invoices.insert(&invoice.number, &stored).await? => {
                return Err(ApiError::conflict(format!(
                    "invoice {} was issued meanwhile by another request: try again",
                    invoice.number
                )));
            }
            None => {}
        }
    }
    for (code, account) in &after.accounts {
        if before.accounts.get(code) != Some(account) {
            accounts.put(code, account).await?;
        }
    }
    for code in before.accounts.keys() {
        if !after.accounts.contains_key(code) {
            accounts.delete(code).await?;
        }
    }
    Ok(())
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

    fn ledger() -> Ledger {
        Ledger::new(Tables::in_memory(&crate::manifest()).expect("the declared tables"))
    }

    #[tokio::test]
    async fn companies_of_two_tenants_have_separate_books() {
        let ledger = ledger();
        ledger
            .with("acme", "main", |b| b.post(CASH, Cents(500)))
            .await
            .unwrap();
        let other = ledger
            .with("globex", "main", |b| b.accounts.len())
            .await
            .unwrap();
        assert_eq!(other, 0);
        let cash = ledger
            .with("acme", "main", |b| b.accounts[CASH].balance)
            .await
            .unwrap();
        assert_eq!(cash, Cents(500));
    }

    #[tokio::test]
    async fn a_change_is_kept_in_the_tables_and_read_back_in_order() {
        let tables = Tables::in_memory(&crate::manifest()).unwrap();
        let ledger = Ledger::new(tables.clone());
        for n in 1..=11 {
            ledger
                .with("acme", "acme-de", |b| {
                    let number = b.next_number("INV");
                    b.invoices.push(Invoice {
                        number,
                        customer: format!("c{n}"),
                        description: String::new(),
                        currency: "EUR".into(),
                        subtotal: Cents(100),
                        tax_rate: 0.0,
                        tax: Cents::ZERO,
                        total: Cents(100),
                        paid: Cents::ZERO,
                        status: InvoiceStatus::Open,
                        issued_on: "2026-12-07".into(),
                        due_on: "2027-01-06".into(),
                    });
                })
                .await
                .unwrap();
        }
        // A ledger on the same tables (a restarted process) sees them, oldest first.
        let numbers = Ledger::new(tables)
            .with("acme", "acme-de", |b| {
                b.invoices
                    .iter()
                    .map(|i| i.number.clone())
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap();
        assert_eq!(numbers.len(), 11);
        assert_eq!(
            (numbers[0].as_str(), numbers[10].as_str()),
            ("INV-1", "INV-11")
        );
    }
}
