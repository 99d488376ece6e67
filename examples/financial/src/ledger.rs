//! The books of every company, kept in the module's declared tables through the SDK's data
//! handle: accounts with balances (`financial_accounts`, sort key the account code), invoices
//! numbered per company (`financial_invoices`, sort key the number), and the postings an
//! invoice and a payment make. Every read and write goes through a handle bound to the tenant
//! and company of the verified context (or of the platform's hook call or event): one
//! company's books are unreachable from another's, and on AWS another tenant's rows are
//! out of reach of the credentials themselves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

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

/// One company's accounts, as a change sees them. (Its invoices are read and written one at
/// a time: [`Ledger::invoices`], [`Ledger::issue`], [`Ledger::with_invoice`].)
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Books {
    /// By code.
    pub accounts: BTreeMap<String, Account>,
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
}

/// An invoice as its table holds it: with its place in the company's sequence.
#[derive(Debug, Serialize, Deserialize)]
struct StoredInvoice {
    seq: usize,
    #[serde(flatten)]
    invoice: Invoice,
}

/// How many times issuing tries the next number after another instance took it.
const ISSUE_ATTEMPTS: usize = 4;

/// Every company's books, in the module's tables.
///
/// A request reads and writes only what it needs: one invoice and the company's few accounts,
/// never the whole invoice table (only listing and the summary read every invoice).
#[derive(Debug, Clone)]
pub struct Ledger {
    tables: Tables,
    /// One change at a time in this process: a change reads the company's accounts (and the
    /// invoice it changes) and writes back what it changed. (Instances of the module on AWS do
    /// not share it: see the README.)
    writing: Arc<tokio::sync::Mutex<()>>,
    /// The last invoice sequence number this process knows of, by tenant and company: where
    /// issuing starts looking for the next free number (the atomic insert decides).
    last_seq: Arc<std::sync::Mutex<HashMap<(String, String), usize>>>,
}

impl Ledger {
    /// The books in `tables` (the module's, from the environment or in memory for tests).
    #[must_use]
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            writing: Arc::default(),
            last_seq: Arc::default(),
        }
    }

    fn table(&self, tenant: &str, company: &str, name: &str) -> Result<Table, ApiError> {
        Ok(self
            .tables
            .for_tenant(tenant, Some(company))
            .company_table(name)?)
    }

    /// Runs `f` on the accounts of `company` of `tenant` (none when new), then writes what it
    /// changed.
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
        let accounts = self.table(tenant, company, ACCOUNTS_TABLE)?;
        let before = load(&accounts).await?;
        let mut books = before.clone();
        let result = f(&mut books);
        save(&before, &books, &accounts).await?;
        Ok(result)
    }

    /// The company's accounts, read without waiting for a change in progress.
    ///
    /// # Errors
    /// As [`Ledger::with`].
    pub async fn books(&self, tenant: &str, company: &str) -> Result<Books, ApiError> {
        load(&self.table(tenant, company, ACCOUNTS_TABLE)?).await
    }

    /// The company's invoices, oldest first.
    ///
    /// # Errors
    /// As [`Ledger::with`].
    pub async fn invoices(&self, tenant: &str, company: &str) -> Result<Vec<Invoice>, ApiError> {
        let table = self.table(tenant, company, INVOICES_TABLE)?;
        let mut stored: Vec<StoredInvoice> = table.query(Range::All).await?;
        stored.sort_by_key(|s| s.seq);
        Ok(stored.into_iter().map(|s| s.invoice).collect())
    }

    /// One invoice by number.
    ///
    /// # Errors
    /// As [`Ledger::with`].
    pub async fn invoice(
        &self,
        tenant: &str,
        company: &str,
        number: &str,
    ) -> Result<Option<Invoice>, ApiError> {
        let table = self.table(tenant, company, INVOICES_TABLE)?;
        let stored: Option<StoredInvoice> = table.get(number).await?;
        Ok(stored.map(|s| s.invoice))
    }

    /// Issues the company's next invoice, `{prefix}-{n}`: `make` builds it under that number
    /// and posts it to the books. The number is taken in one atomic step (another instance
    /// may have taken it: then the next is tried), before the accounts are written.
    ///
    /// # Errors
    /// A 409 when other instances took [`ISSUE_ATTEMPTS`] numbers in a row; otherwise as
    /// [`Ledger::with`].
    pub async fn issue(
        &self,
        tenant: &str,
        company: &str,
        prefix: &str,
        mut make: impl FnMut(String, &mut Books) -> Invoice,
    ) -> Result<Invoice, ApiError> {
        let _one_at_a_time = self.writing.lock().await;
        let (accounts, invoices) = (
            self.table(tenant, company, ACCOUNTS_TABLE)?,
            self.table(tenant, company, INVOICES_TABLE)?,
        );
        let before = load(&accounts).await?;
        let which = (tenant.to_owned(), company.to_owned());
        let known = self
            .last_seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&which)
            .copied();
        let mut seq = match known {
            Some(seq) => seq + 1,
            None => last_seq(&invoices).await? + 1,
        };
        for attempt in 1..=ISSUE_ATTEMPTS {
            let mut books = before.clone();
            let invoice = make(format!("{prefix}-{seq}"), &mut books);
            let stored = StoredInvoice {
                seq,
                invoice: invoice.clone(),
            };
            if invoices.insert(&invoice.number, &stored).await? {
                self.last_seq
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(which, seq);
                save(&before, &books, &accounts).await?;
                return Ok(invoice);
            }
            // Another instance issued it meanwhile: the next free one, as the table says.
            if attempt < ISSUE_ATTEMPTS {
                seq = (last_seq(&invoices).await? + 1).max(seq + 1);
            }
        }
        Err(ApiError::conflict(format!(
            "invoice {prefix}-{seq} was issued meanwhile by another request: try again"
        )))
    }

    /// Runs `f` on the invoice `number` and the company's accounts, then writes both back
    /// (the invoice first); `None` when there is no such invoice.
    ///
    /// # Errors
    /// What `f` answers, and as [`Ledger::with`].
    pub async fn with_invoice<T>(
        &self,
        tenant: &str,
        company: &str,
        number: &str,
        f: impl FnOnce(&mut Invoice, &mut Books) -> Result<T, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        let _one_at_a_time = self.writing.lock().await;
        let (accounts, invoices) = (
            self.table(tenant, company, ACCOUNTS_TABLE)?,
            self.table(tenant, company, INVOICES_TABLE)?,
        );
        let Some(mut stored) = invoices.get::<StoredInvoice>(number).await? else {
            return Ok(None);
        };
        let before = load(&accounts).await?;
        let mut books = before.clone();
        let was = stored.invoice.clone();
        let result = f(&mut stored.invoice, &mut books)?;
        if stored.invoice != was {
            invoices.put(number, &stored).await?;
        }
        save(&before, &books, &accounts).await?;
        Ok(Some(result))
    }
}

async fn load(accounts: &Table) -> Result<Books, ApiError> {
    let accounts: Vec<Account> = accounts.query(Range::All).await?;
    Ok(Books {
        accounts: accounts.into_iter().map(|a| (a.code.clone(), a)).collect(),
    })
}

/// The highest sequence number among the company's invoices (0 when none).
async fn last_seq(invoices: &Table) -> Result<usize, ApiError> {
    let stored: Vec<StoredInvoice> = invoices.query(Range::All).await?;
    Ok(stored.iter().map(|s| s.seq).max().unwrap_or(0))
}

/// Writes the accounts that changed.
async fn save(before: &Books, after: &Books, accounts: &Table) -> Result<(), ApiError> {
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

    fn invoice(number: String) -> Invoice {
        Invoice {
            number,
            customer: "c".into(),
            description: String::new(),
            currency: "EUR".into(),
            subtotal: Cents(100),
            tax_rate: 0.0,
            tax: Cents::ZERO,
            total: Cents(100),
            paid: Cents::ZERO,
            status: InvoiceStatus::Open,
            issued_on: "2026-12-08".into(),
            due_on: "2027-01-07".into(),
        }
    }

    /// The numbers of acme-de's invoices, oldest first.
    async fn numbers(ledger: &Ledger) -> Vec<String> {
        let invoices = ledger.invoices("acme", "acme-de").await.expect("listed");
        invoices.into_iter().map(|i| i.number).collect()
    }

    /// Two processes on the same tables issue one sequence between them: the one whose last
    /// number is stale loses the atomic insert and takes the next free number, no 409.
    #[tokio::test]
    async fn two_processes_issue_one_sequence_without_a_conflict() {
        let tables = Tables::in_memory(&crate::manifest()).unwrap();
        let (a, b) = (Ledger::new(tables.clone()), Ledger::new(tables));
        let mut issued = Vec::new();
        for ledger in [&a, &b, &a, &a, &b] {
            let invoice = ledger
                .issue("acme", "acme-de", "INV", |number, books| {
                    books.post(RECEIVABLE, Cents(100));
                    invoice(number)
                })
                .await
                .expect("issued");
            issued.push(invoice.number);
        }
        assert_eq!(issued, ["INV-1", "INV-2", "INV-3", "INV-4", "INV-5"]);
        assert_eq!(numbers(&b).await, issued);
        let receivable = a
            .with("acme", "acme-de", |books| {
                books.accounts[RECEIVABLE].balance
            })
            .await
            .unwrap();
        assert_eq!(receivable, Cents(500), "every issue posted once");
    }

    #[tokio::test]
    async fn a_change_is_kept_in_the_tables_and_read_back_in_order() {
        let tables = Tables::in_memory(&crate::manifest()).unwrap();
        let ledger = Ledger::new(tables.clone());
        for n in 1..=11 {
            ledger
                .issue("acme", "acme-de", "INV", |number, _| Invoice {
                    customer: format!("c{n}"),
                    ..invoice(number)
                })
                .await
                .unwrap();
        }
        // A ledger on the same tables (a restarted process) sees them, oldest first.
        let numbers = numbers(&Ledger::new(tables)).await;
        assert_eq!(numbers.len(), 11);
        assert_eq!(
            (numbers[0].as_str(), numbers[10].as_str()),
            ("INV-1", "INV-11")
        );
    }
}
