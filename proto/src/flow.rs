//! SENDME flow control: how many DATA cells may be in flight on a circuit and on a stream.
//!
//! The sender of DATA starts with a *package* window (circuit 1000 cells, stream 500) and
//! spends one cell of each per DATA cell; every SENDME from the receiver gives back one
//! increment (circuit 100, stream 50). The receiver keeps a *deliver* window and sends a
//! SENDME each time it has delivered an increment's worth. Either side that sees the other
//! exceed its window (DATA beyond the window, or SENDME credit beyond the start) has found a
//! protocol violation and closes the circuit.

use thiserror::Error;

/// Circuit window at creation.
pub const CIRCUIT_WINDOW_START: u32 = 1000;
/// Cells per circuit SENDME.
pub const CIRCUIT_WINDOW_INCREMENT: u32 = 100;
/// Stream window at creation.
pub const STREAM_WINDOW_START: u32 = 500;
/// Cells per stream SENDME.
pub const STREAM_WINDOW_INCREMENT: u32 = 50;

/// The peer broke the window rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WindowError {
    /// DATA arrived with the deliver window at zero.
    #[error("peer sent DATA beyond its window")]
    Overrun,
    /// A SENDME would lift the package window above its start.
    #[error("peer sent an unexpected SENDME")]
    UnexpectedSendme,
    /// Tried to send with an empty package window (a bug in the caller).
    #[error("package window exhausted")]
    Exhausted,
}

/// The sending side's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageWindow {
    window: u32,
    start: u32,
    increment: u32,
}

impl PackageWindow {
    /// A circuit-level window (1000, +100).
    pub fn circuit() -> Self {
        PackageWindow {
            window: CIRCUIT_WINDOW_START,
            start: CIRCUIT_WINDOW_START,
            increment: CIRCUIT_WINDOW_INCREMENT,
        }
    }

    /// A stream-level window (500, +50).
    pub fn stream() -> Self {
        PackageWindow {
            window: STREAM_WINDOW_START,
            start: STREAM_WINDOW_START,
            increment: STREAM_WINDOW_INCREMENT,
        }
    }

    /// Cells that may still be sent.
    pub fn available(&self) -> u32 {
        self.window
    }

    /// Spends one cell.
    pub fn take(&mut self) -> Result<(), WindowError> {
        self.window = self.window.checked_sub(1).ok_or(WindowError::Exhausted)?;
        Ok(())
    }

    /// Applies a SENDME; returns the number of cells credited.
    pub fn on_sendme(&mut self) -> Result<u32, WindowError> {
        if self.window + self.increment > self.start {
            return Err(WindowError::UnexpectedSendme);
        }
        self.window += self.increment;
        Ok(self.increment)
    }
}

/// The receiving side's window.
///
/// Credit goes back only for cells *delivered* (written to the application, or handed on to a
/// stream), not merely received: a slow application then stalls the sender instead of letting
/// unwritten data pile up beyond the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverWindow {
    window: u32,
    start: u32,
    increment: u32,
    delivered: u32,
}

impl DeliverWindow {
    /// A circuit-level window (1000, +100).
    pub fn circuit() -> Self {
        DeliverWindow {
            window: CIRCUIT_WINDOW_START,
            start: CIRCUIT_WINDOW_START,
            increment: CIRCUIT_WINDOW_INCREMENT,
            delivered: 0,
        }
    }

    /// A stream-level window (500, +50).
    pub fn stream() -> Self {
        DeliverWindow {
            window: STREAM_WINDOW_START,
            start: STREAM_WINDOW_START,
            increment: STREAM_WINDOW_INCREMENT,
            delivered: 0,
        }
    }

    /// Accounts for one DATA cell received.
    pub fn on_data(&mut self) -> Result<(), WindowError> {
        self.window = self.window.checked_sub(1).ok_or(WindowError::Overrun)?;
        Ok(())
    }

    /// Accounts for `cells` received cells now delivered; returns how many SENDMEs to send
    /// (each credits one increment). Credit never lifts the window above its start.
    pub fn on_delivered(&mut self, cells: u32) -> u32 {
        self.delivered = self.delivered.saturating_add(cells);
        let room = (self.start - self.window) / self.increment;
        let due = (self.delivered / self.increment).min(room);
        self.delivered -= due * self.increment;
        self.window += due * self.increment;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_window_spends_and_credits() {
        let mut w = PackageWindow::circuit();
        assert_eq!(w.on_sendme(), Err(WindowError::UnexpectedSendme));
        for _ in 0..1000 {
            w.take().unwrap();
        }
        assert_eq!(w.take(), Err(WindowError::Exhausted));
        assert_eq!(w.on_sendme(), Ok(100));
        assert_eq!(w.available(), 100);
    }

    #[test]
    fn receiver_and_sender_stay_in_step() {
        let (mut send, mut recv) = (PackageWindow::stream(), DeliverWindow::stream());
        let mut sendmes = 0;
        for _ in 0..10_000 {
            if send.available() == 0 {
                panic!("stalled");
            }
            send.take().unwrap();
            recv.on_data().unwrap();
            for _ in 0..recv.on_delivered(1) {
                send.on_sendme().unwrap();
                sendmes += 1;
            }
        }
        assert_eq!(sendmes, 10_000 / 50);
    }

    #[test]
    fn credit_follows_delivery_not_receipt() {
        let (mut send, mut recv) = (PackageWindow::stream(), DeliverWindow::stream());
        for _ in 0..500 {
            send.take().unwrap();
            recv.on_data().unwrap();
        }
        // The application has written only 49 cells: no credit yet.
        assert_eq!(recv.on_delivered(49), 0);
        // One more makes 50: one SENDME, and the sender may send 50 more, no more.
        assert_eq!(recv.on_delivered(1), 1);
        send.on_sendme().unwrap();
        for _ in 0..50 {
            send.take().unwrap();
            recv.on_data().unwrap();
        }
        assert_eq!(send.take(), Err(WindowError::Exhausted));
        assert_eq!(recv.on_data(), Err(WindowError::Overrun));
    }

    #[test]
    fn overrun_is_detected() {
        let mut recv = DeliverWindow::stream();
        for _ in 0..500 {
            recv.on_data().unwrap();
        }
        assert_eq!(recv.on_data(), Err(WindowError::Overrun));
    }
}
